// Command capcount reads mirror traffic from an interface with the
// AF_PACKET source and, on SIGINT or SIGTERM, prints how many packets it
// received and how many the kernel dropped.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/vrsniff/vrsniff/internal/capture"
	"github.com/vrsniff/vrsniff/internal/mirror"
)

func main() {
	iface := flag.String("i", "", "interface")
	flag.Parse()
	src, err := capture.OpenAFPacket(*iface, capture.Options{Promisc: true})
	if err != nil {
		fmt.Fprintln(os.Stderr, "capcount:", err)
		os.Exit(1)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-sig
		src.Close()
	}()
	fmt.Println("ready")
	var p mirror.Packet
	for {
		if err := src.Next(&p); err != nil {
			if !errors.Is(err, capture.ErrClosed) {
				fmt.Fprintln(os.Stderr, "capcount:", err)
			}
			break
		}
	}
	st := src.Stats()
	fmt.Printf("captured %d dropped %d\n", st.Received, st.Dropped)
}
