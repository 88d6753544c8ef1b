package main

import (
	"bufio"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"
)

// Outer addresses of the generated traffic. The inner source MAC is not a
// numbered one (02:4e:...), so that count never takes attack traffic for
// the legitimate one.
var (
	outerSrcMAC = []byte{2, 0, 0, 0, 0xe0, 1}
	outerDstMAC = []byte{2, 0, 0, 0, 0xe0, 2}
	innerDstMAC = []byte{2, 0, 0, 0, 0xee, 1}
	innerSrcMAC = []byte{2, 0, 0, 0, 0xee, 2}
	analyzer    = [4]byte{10, 9, 9, 9}
)

const mirrorPort = 8099

// pcapWriter writes a classic pcap file of Ethernet frames.
type pcapWriter struct {
	f   *os.File
	w   *bufio.Writer
	t   time.Time
	rec [16]byte
}

func createPcap(name string) (*pcapWriter, error) {
	f, err := os.Create(name)
	if err != nil {
		return nil, err
	}
	w := &pcapWriter{f: f, w: bufio.NewWriterSize(f, 1<<20), t: time.Unix(1700000000, 0)}
	var h [24]byte
	binary.LittleEndian.PutUint32(h[0:], 0xa1b2c3d4)
	binary.LittleEndian.PutUint16(h[4:], 2)
	binary.LittleEndian.PutUint16(h[6:], 4)
	binary.LittleEndian.PutUint32(h[16:], 65535)
	binary.LittleEndian.PutUint32(h[20:], 1) // Ethernet
	_, err = w.w.Write(h[:])
	return w, err
}

func (w *pcapWriter) write(frame []byte) error { return w.writeRecord(frame, len(frame)) }

// writeRecord writes a frame that was orig bytes long on the wire.
func (w *pcapWriter) writeRecord(frame []byte, orig int) error {
	w.t = w.t.Add(time.Microsecond)
	binary.LittleEndian.PutUint32(w.rec[0:], uint32(w.t.Unix()))
	binary.LittleEndian.PutUint32(w.rec[4:], uint32(w.t.Nanosecond()/1000))
	binary.LittleEndian.PutUint32(w.rec[8:], uint32(len(frame)))
	binary.LittleEndian.PutUint32(w.rec[12:], uint32(orig))
	w.w.Write(w.rec[:])
	_, err := w.w.Write(frame)
	return err
}

func (w *pcapWriter) close() error {
	err := w.w.Flush()
	return errors.Join(err, w.f.Close())
}

// ipv4Frame builds an Ethernet frame with an IPv4 header (no options) and
// the given IP payload; fragOff is the flags and offset field. The UDP
// checksum, if the payload is UDP, is left to the caller (zero: none).
func ipv4Frame(src, dst [4]byte, id, fragOff uint16, payload []byte) []byte {
	f := make([]byte, 14+20+len(payload))
	copy(f[0:], outerDstMAC)
	copy(f[6:], outerSrcMAC)
	f[12], f[13] = 0x08, 0x00
	ip := f[14:34]
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], uint16(20+len(payload)))
	binary.BigEndian.PutUint16(ip[4:], id)
	binary.BigEndian.PutUint16(ip[6:], fragOff)
	ip[8], ip[9] = 64, 17
	copy(ip[12:], src[:])
	copy(ip[16:], dst[:])
	var sum uint32
	for i := 0; i < 20; i += 2 {
		sum += uint32(ip[i])<<8 | uint32(ip[i+1])
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	binary.BigEndian.PutUint16(ip[10:], ^uint16(sum))
	copy(f[34:], payload)
	return f
}

// udpHeader returns a UDP header to the mirror port claiming length bytes
// of datagram (header included), without checksum.
func udpHeader(sport uint16, length int) []byte {
	h := make([]byte, 8)
	binary.BigEndian.PutUint16(h[0:], sport)
	binary.BigEndian.PutUint16(h[2:], mirrorPort)
	binary.BigEndian.PutUint16(h[4:], uint16(length))
	return h
}

// mirrorMeta is Juniper-header metadata: host, flags, source and
// destination VN (either may be empty: left out), end.
func mirrorMeta(src, dst string) []byte {
	m := []byte{1, 4, 10, 10, 0, 3, 2, 4, 0x40, 0, 0, 0xa0}
	if src != "" {
		m = append(append(m, 3, byte(len(src))), src...)
	}
	if dst != "" {
		m = append(append(m, 4, byte(len(dst))), dst...)
	}
	return append(m, 0xff, 0)
}

// innerFrame is a 64-byte Ethernet frame with the attack MACs.
func innerFrame(i int) []byte {
	b := make([]byte, 64)
	copy(b, innerDstMAC)
	copy(b[6:], innerSrcMAC)
	b[12], b[13] = 0x08, 0x00
	binary.BigEndian.PutUint32(b[60:], uint32(i))
	return b
}

// junkfrag writes first fragments (offset 0, more fragments set) of
// mirror datagrams whose other fragments never come: each claims a
// datagram 1480 bytes longer than itself. Sizes spread from 100 to 1514
// bytes; sendmirror -vary-ip gives every copy sent its own source and ID.
func junkfrag(args []string) error {
	fs := flag.NewFlagSet("junkfrag", flag.ExitOnError)
	out := fs.String("o", "", "output pcap `file`")
	n := fs.Int("n", 64, "distinct fragments")
	fs.Parse(args)
	if *out == "" || *n <= 0 {
		return errors.New("need -o and a positive -n")
	}
	w, err := createPcap(*out)
	if err != nil {
		return err
	}
	meta := mirrorMeta("default-domain:admin:vn-junk", "default-domain:admin:vn-junk-db")
	for i := range *n {
		size := 100 + (1514-100)*i/max(1, *n-1)
		payload := make([]byte, size-34)
		ipLen := len(payload) &^ 7 // a first fragment carries a multiple of 8 bytes
		payload = payload[:ipLen]
		copy(payload, udpHeader(uint16(40000+i), ipLen+1480))
		copy(payload[8:], meta)
		for j := 8 + len(meta); j < len(payload); j++ {
			payload[j] = byte(i + j)
		}
		src := [4]byte{10, 128, byte(i >> 8), byte(i)}
		if err := w.write(ipv4Frame(src, analyzer, uint16(i), 0x2000, payload)); err != nil {
			return err
		}
	}
	if err := w.close(); err != nil {
		return err
	}
	fmt.Printf("frames=%d\n", *n)
	return nil
}

// pairName makes the VN pair of datagram i: four shapes in turn, the
// ones of split-slug-collision.pcap (names that differ in where ':' and
// '_' are), names with path characters, and names near the TLV limit, so
// that the file labels of --split-by meet collisions, escaping and
// hashing.
func pairName(i int) (src, dst string) {
	switch i % 4 {
	case 0:
		return fmt.Sprintf("default-domain:admin:vn_web%07d", i), "default-domain:admin:vn-db"
	case 1:
		return fmt.Sprintf("default-domain:admin_vn:web%07d", i), "default-domain:admin:vn-db"
	case 2:
		return fmt.Sprintf("default-domain:admin:vn/../web %07d", i), fmt.Sprintf("default-domain:admin:vn-db%07d", i)
	}
	return "default-domain:" + strings.Repeat("x", 200) + fmt.Sprintf("%07d", i), "default-domain:admin:vn-db"
}

// vnpairs writes n unfragmented mirror datagrams, each with a VN pair of
// its own.
func vnpairs(args []string) error {
	fs := flag.NewFlagSet("vnpairs", flag.ExitOnError)
	out := fs.String("o", "", "output pcap `file`")
	n := fs.Int("n", 300000, "datagrams, one per VN pair")
	fs.Parse(args)
	if *out == "" || *n <= 0 {
		return errors.New("need -o and a positive -n")
	}
	w, err := createPcap(*out)
	if err != nil {
		return err
	}
	for i := range *n {
		src, dst := pairName(i)
		data := append(mirrorMeta(src, dst), innerFrame(i)...)
		payload := append(udpHeader(uint16(49152+i%1024), 8+len(data)), data...)
		if err := w.write(ipv4Frame([4]byte{10, 10, 0, 3}, analyzer, uint16(i), 0, payload)); err != nil {
			return err
		}
	}
	if err := w.close(); err != nil {
		return err
	}
	fmt.Printf("frames=%d pairs=%d\n", *n, *n)
	return nil
}

// repeat writes a classic pcap whose records are those of seed, over and
// over, until the file holds at least size bytes.
func repeat(args []string) error {
	fs := flag.NewFlagSet("repeat", flag.ExitOnError)
	out := fs.String("o", "", "output pcap `file`")
	var size sizeFlag
	fs.Var(&size, "size", "bytes to reach (K, M, G suffixes)")
	fs.Parse(args)
	if *out == "" || fs.NArg() != 1 || size <= 0 {
		return errors.New("need -o, -size and one seed file")
	}
	seed, err := os.ReadFile(fs.Arg(0))
	if err != nil {
		return err
	}
	if len(seed) <= 24 {
		return fmt.Errorf("%s: no records", fs.Arg(0))
	}
	switch binary.LittleEndian.Uint32(seed) {
	case 0xa1b2c3d4, 0xa1b23c4d, 0xd4c3b2a1, 0x4d3cb2a1:
	default:
		return fmt.Errorf("%s: not a classic pcap file", fs.Arg(0))
	}
	hdr, body := seed[:24], seed[24:]
	// Write whole copies of the records in chunks of about 64 MiB.
	per := max(1, (64<<20)/len(body))
	chunk := make([]byte, 0, per*len(body))
	for range per {
		chunk = append(chunk, body...)
	}
	copies := (int64(size) - 24 + int64(len(body)) - 1) / int64(len(body))
	f, err := os.Create(*out)
	if err != nil {
		return err
	}
	_, err = f.Write(hdr)
	for left := copies; left > 0 && err == nil; {
		k := min(left, int64(per))
		_, err = f.Write(chunk[:k*int64(len(body))])
		left -= k
	}
	if err = errors.Join(err, f.Close()); err != nil {
		os.Remove(*out)
		return err
	}
	fmt.Printf("copies=%d bytes=%d\n", copies, 24+copies*int64(len(body)))
	return nil
}
