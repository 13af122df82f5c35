package flows

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// NFLOG netlink constants (linux/netfilter/nfnetlink_log.h).
const (
	nfnlSubsysULog    = 4
	nfulnlMsgPacket   = 0
	nfulnlMsgConfig   = 1
	nfulaCfgCmd       = 1
	nfulaCfgMode      = 2
	nfulnlCfgCmdBind  = 1
	nfulnlCopyPacket  = 2
	nfulaPayload      = 9
	nfulaPrefix       = 10
	nfulaIfindexIndev = 4
	nfulaIfindexOutdv = 5
	copyRange         = 128 // enough for IP and transport headers
)

// LogPacket is one packet NFLOG delivered.
type LogPacket struct {
	Prefix        string
	InDev, OutDev uint32
	Payload       []byte
}

// NFLOG reads one NFLOG group.
type NFLOG struct {
	c     *netlink.Conn
	group uint16
}

// OpenNFLOG binds NFLOG group in the network namespace at nsPath ("" =
// this one). Only one process may bind a group.
func OpenNFLOG(nsPath string, group uint16) (*NFLOG, error) {
	cfg := &netlink.Config{}
	if nsPath != "" {
		f, err := os.Open(nsPath)
		if err != nil {
			return nil, fmt.Errorf("open network namespace %s: %w", nsPath, err)
		}
		defer f.Close()
		cfg.NetNS = int(f.Fd())
	}
	c, err := netlink.Dial(unix.NETLINK_NETFILTER, cfg)
	if err != nil {
		return nil, fmt.Errorf("open NFLOG socket: %w", err)
	}
	n := &NFLOG{c: c, group: group}
	if err := n.config([]netlink.Attribute{{Type: nfulaCfgCmd, Data: []byte{nfulnlCfgCmdBind}}}); err != nil {
		c.Close()
		return nil, fmt.Errorf("bind NFLOG group %d: %w", group, err)
	}
	mode := make([]byte, 6)
	binary.BigEndian.PutUint32(mode[0:4], copyRange)
	mode[4] = nfulnlCopyPacket
	if err := n.config([]netlink.Attribute{{Type: nfulaCfgMode, Data: mode}}); err != nil {
		c.Close()
		return nil, fmt.Errorf("set NFLOG group %d copy mode: %w", group, err)
	}
	_ = c.SetReadBuffer(4 << 20)
	return n, nil
}

func (n *NFLOG) config(attrs []netlink.Attribute) error {
	ad, err := netlink.MarshalAttributes(attrs)
	if err != nil {
		return err
	}
	hdr := []byte{unix.AF_UNSPEC, 0, 0, 0}
	binary.BigEndian.PutUint16(hdr[2:], n.group)
	_, err = n.c.Execute(netlink.Message{
		Header: netlink.Header{Type: netlink.HeaderType(nfnlSubsysULog<<8 | nfulnlMsgConfig), Flags: netlink.Request | netlink.Acknowledge},
		Data:   append(hdr, ad...),
	})
	return err
}

// Close unbinds the group.
func (n *NFLOG) Close() error { return n.c.Close() }

// Read delivers packets to f until ctx is done or the socket fails.
func (n *NFLOG) Read(ctx context.Context, f func(LogPacket)) error {
	go func() {
		<-ctx.Done()
		_ = n.c.Close()
	}()
	for {
		msgs, err := n.c.Receive()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var oe *netlink.OpError
			if errors.As(err, &oe) && errors.Is(oe.Err, unix.ENOBUFS) {
				continue // the kernel dropped log packets: go on
			}
			return fmt.Errorf("read NFLOG: %w", err)
		}
		for _, m := range msgs {
			if m.Header.Type != netlink.HeaderType(nfnlSubsysULog<<8|nfulnlMsgPacket) || len(m.Data) < 4 {
				continue
			}
			ad, err := netlink.NewAttributeDecoder(m.Data[4:])
			if err != nil {
				continue
			}
			var p LogPacket
			for ad.Next() {
				switch ad.Type() {
				case nfulaPrefix:
					p.Prefix = string(trimNul(ad.Bytes()))
				case nfulaPayload:
					p.Payload = append([]byte(nil), ad.Bytes()...)
				case nfulaIfindexIndev:
					if b := ad.Bytes(); len(b) == 4 {
						p.InDev = binary.BigEndian.Uint32(b)
					}
				case nfulaIfindexOutdv:
					if b := ad.Bytes(); len(b) == 4 {
						p.OutDev = binary.BigEndian.Uint32(b)
					}
				}
			}
			f(p)
		}
	}
}

func trimNul(b []byte) []byte {
	for len(b) > 0 && b[len(b)-1] == 0 {
		b = b[:len(b)-1]
	}
	return b
}
