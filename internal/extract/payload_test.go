package extract

import "github.com/gopacket/gopacket"

func gopacketPayload(b []byte) gopacket.SerializableLayer { return gopacket.Payload(b) }
