package nft

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"syscall"
	"time"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// nlConn is our netfilter netlink socket in the target namespace: batches
// go out through it and rule dumps come back through it. It is created in
// the namespace by the netlink library (on a locked thread of its own); the
// calling goroutine's namespace never changes.
type nlConn struct {
	c       *netlink.Conn
	raw     syscall.RawConn
	seq     uint32
	sndbuf  int
	scratch []byte
}

const defaultTimeout = 60 * time.Second

func dialNetfilter(nsFd int) (*nlConn, error) {
	c, err := netlink.Dial(unix.NETLINK_NETFILTER, &netlink.Config{NetNS: nsFd})
	if err != nil {
		return nil, fmt.Errorf("open netfilter netlink socket: %w", err)
	}
	// Short acks (no copy of the request) and the kernel's error text.
	_ = c.SetOption(netlink.CapAcknowledge, true)
	_ = c.SetOption(netlink.ExtendedAcknowledge, true)
	raw, err := c.SyscallConn()
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("netlink raw conn: %w", err)
	}
	n := &nlConn{c: c, raw: raw, seq: uint32(time.Now().UnixNano()), scratch: make([]byte, 256<<10)}
	// Errors of a failing batch arrive one message each; leave them room.
	if err := n.setBuf(unix.SO_RCVBUFFORCE, 8<<20); err != nil {
		c.Close()
		return nil, err
	}
	return n, nil
}

func (n *nlConn) close() error { return n.c.Close() }

func (n *nlConn) setBuf(opt, size int) error {
	var serr error
	err := n.raw.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, opt, size)
	})
	if err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("set netlink socket buffer to %d bytes: %w", size, err)
	}
	return nil
}

func deadline(ctx context.Context) time.Time {
	if d, ok := ctx.Deadline(); ok {
		return d
	}
	return time.Now().Add(defaultTimeout)
}

// send transmits the batch in one sendmsg (the kernel processes a batch
// only if it arrives whole) and waits for the verdict: the ack of the last
// operation, preceded by an error for every operation that failed and, if
// the commit itself failed, an error for the batch header.
func (n *nlConn) send(ctx context.Context, b *batch) error {
	b.close()
	if b.err != nil {
		return b.err
	}
	if need := len(b.buf) + 64<<10; need > n.sndbuf {
		if err := n.setBuf(unix.SO_SNDBUFFORCE, need); err != nil {
			return err
		}
		n.sndbuf = need
	}
	dl := deadline(ctx)
	_ = n.c.SetDeadline(dl)
	defer n.c.SetDeadline(time.Time{})
	var werr error
	err := n.raw.Write(func(fd uintptr) bool {
		werr = unix.Sendto(int(fd), b.buf, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK})
		return werr != unix.EAGAIN
	})
	if err == nil {
		err = werr
	}
	if err != nil {
		return fmt.Errorf("send batch of %d bytes: %w", len(b.buf), err)
	}
	ackSeq := b.lastOpSeq()
	var errs []error
	for {
		msgs, err := n.recv()
		if err != nil {
			return fmt.Errorf("read batch result: %w", errors.Join(append(errs, err)...))
		}
		for _, m := range msgs {
			if m.Header.Type != unix.NLMSG_ERROR || len(m.Data) < 4 {
				continue
			}
			code := int32(binary.NativeEndian.Uint32(m.Data[:4]))
			if code != 0 {
				errs = append(errs, &errBatch{op: b.desc(m.Header.Seq), errno: unix.Errno(-code), msg: extAckMsg(m)})
			}
			if m.Header.Seq == ackSeq {
				return errors.Join(errs...)
			}
		}
	}
}

// recv reads one datagram of netlink messages, honouring the deadline.
func (n *nlConn) recv() ([]syscall.NetlinkMessage, error) {
	var nr int
	var rerr error
	err := n.raw.Read(func(fd uintptr) bool {
		nr, _, rerr = unix.Recvfrom(int(fd), n.scratch, 0)
		return rerr != unix.EAGAIN
	})
	if err == nil {
		err = rerr
	}
	if err != nil {
		return nil, err
	}
	return syscall.ParseNetlinkMessage(n.scratch[:nr])
}

// extAckMsg extracts the kernel's error text (NLMSGERR_ATTR_MSG) from an
// error message sent with NETLINK_CAP_ACK, if present.
func extAckMsg(m syscall.NetlinkMessage) string {
	if m.Header.Flags&unix.NLM_F_ACK_TLVS == 0 || len(m.Data) < 4+nlmsgHdrLen {
		return ""
	}
	tlvs := m.Data[4+nlmsgHdrLen:]
	ad, err := netlink.NewAttributeDecoder(tlvs)
	if err != nil {
		return ""
	}
	for ad.Next() {
		if ad.Type() == unix.NLMSGERR_ATTR_MSG {
			return ad.String()
		}
	}
	return ""
}

// ruleInfo is what we need of a kernel rule: its chain and comment.
type ruleInfo struct {
	chain   string
	comment string
}

// dumpRules lists every rule of our table in one dump (the library only
// dumps one chain at a time).
func (n *nlConn) dumpRules(ctx context.Context) ([]ruleInfo, error) {
	for attempt := 0; ; attempt++ {
		rs, interrupted, err := n.dumpRulesOnce(ctx)
		if err != nil || !interrupted {
			return rs, err
		}
		if attempt == 5 {
			return nil, errors.New("rule dump kept being interrupted by concurrent changes")
		}
	}
}

func (n *nlConn) dumpRulesOnce(ctx context.Context) (out []ruleInfo, interrupted bool, err error) {
	n.seq++
	seq := n.seq
	req := make([]byte, 0, 64)
	var h [nlmsgHdrLen + nfgenHdrLen]byte
	binary.NativeEndian.PutUint16(h[4:], uint16(nftMsgBase|unix.NFT_MSG_GETRULE))
	binary.NativeEndian.PutUint16(h[6:], unix.NLM_F_REQUEST|unix.NLM_F_DUMP)
	binary.NativeEndian.PutUint32(h[8:], seq)
	h[16] = unix.NFPROTO_INET
	req = append(req, h[:]...)
	tb := &batch{buf: req}
	tb.str(unix.NFTA_RULE_TABLE, tableName)
	binary.NativeEndian.PutUint32(tb.buf[0:], uint32(len(tb.buf)))

	_ = n.c.SetDeadline(deadline(ctx))
	defer n.c.SetDeadline(time.Time{})
	var werr error
	err = n.raw.Write(func(fd uintptr) bool {
		werr = unix.Sendto(int(fd), tb.buf, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK})
		return werr != unix.EAGAIN
	})
	if err == nil {
		err = werr
	}
	if err != nil {
		return nil, false, fmt.Errorf("request rule dump: %w", err)
	}
	for {
		msgs, err := n.recv()
		if err != nil {
			return nil, false, fmt.Errorf("read rule dump: %w", err)
		}
		for _, m := range msgs {
			if m.Header.Seq != seq {
				continue // a stray answer to an earlier request
			}
			if m.Header.Flags&unix.NLM_F_DUMP_INTR != 0 {
				interrupted = true
			}
			switch m.Header.Type {
			case unix.NLMSG_DONE:
				return out, interrupted, nil
			case unix.NLMSG_ERROR:
				code := int32(binary.NativeEndian.Uint32(m.Data[:4]))
				if code == 0 {
					continue
				}
				if unix.Errno(-code) == unix.ENOENT {
					return nil, false, nil // no table: no rules
				}
				return nil, false, fmt.Errorf("rule dump: %w", unix.Errno(-code))
			case nftMsgBase | unix.NFT_MSG_NEWRULE:
				ri, err := parseRule(m.Data)
				if err != nil {
					return nil, false, err
				}
				out = append(out, ri)
			}
		}
	}
}

func parseRule(data []byte) (ruleInfo, error) {
	var ri ruleInfo
	if len(data) < nfgenHdrLen {
		return ri, errors.New("short rule message")
	}
	ad, err := netlink.NewAttributeDecoder(data[nfgenHdrLen:])
	if err != nil {
		return ri, fmt.Errorf("decode rule: %w", err)
	}
	for ad.Next() {
		switch ad.Type() {
		case unix.NFTA_RULE_CHAIN:
			ri.chain = ad.String()
		case unix.NFTA_RULE_USERDATA:
			ri.comment = commentOf(ad.Bytes())
		}
	}
	return ri, ad.Err()
}
