package nft

import (
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"golang.org/x/sys/unix"
)

// Netlink constants not (or not usefully) exported elsewhere.
const (
	nlmsgHdrLen   = 16
	nfgenHdrLen   = 4
	nlaHdrLen     = 4
	nlaNested     = unix.NLA_F_NESTED
	maxAttrLen    = 0xffff
	elemChunkSize = 48 << 10 // keep element lists well under the 64 KiB attribute limit
	nftMsgBase    = unix.NFNL_SUBSYS_NFTABLES << 8
	// NFTA_SET_FIELD_LEN: the length of one field of a concatenated key.
	nftaSetFieldLen   = 1
	nftaSetDescConcat = 2
	nftaSetElemKeyEnd = 10
	udataMax          = 200 // comments stay well inside the kernel's 256-byte userdata
	nfAccept          = 1   // NF_ACCEPT: base chain policy
	// NFTA_CHAIN_USERDATA (since Linux 5.10; missing from x/sys/unix) and
	// its comment TLV type, NFTNL_UDATA_CHAIN_COMMENT.
	nftaChainUserdata = 12
	udataChainComment = 0
)

// batch is one nftables transaction being encoded: BATCH_BEGIN, the
// operations, BATCH_END. The kernel applies all of it or none of it.
type batch struct {
	buf      []byte
	firstSeq uint32
	seq      uint32 // next sequence number
	descs    []string
	setID    uint32
	lastOp   int // offset of the last operation's header (gets the ack flag)
	err      error
	ops      int
}

func newBatch(seq uint32) *batch {
	b := &batch{firstSeq: seq, seq: seq, buf: make([]byte, 0, 64<<10)}
	b.header(unix.NFNL_MSG_BATCH_BEGIN, 0, "batch begin", unix.AF_UNSPEC, unix.NFNL_SUBSYS_NFTABLES)
	b.end(0)
	return b
}

// header starts a message and returns its offset.
func (b *batch) header(typ, flags uint16, desc string, family byte, resID uint16) int {
	start := len(b.buf)
	var h [nlmsgHdrLen + nfgenHdrLen]byte
	binary.NativeEndian.PutUint16(h[4:], typ)
	binary.NativeEndian.PutUint16(h[6:], unix.NLM_F_REQUEST|flags)
	binary.NativeEndian.PutUint32(h[8:], b.seq)
	h[16] = family
	h[17] = unix.NFNETLINK_V0
	binary.BigEndian.PutUint16(h[18:], resID)
	b.buf = append(b.buf, h[:]...)
	b.descs = append(b.descs, desc)
	b.seq++
	return start
}

// op starts an nftables operation message in the inet family.
func (b *batch) op(msg int, flags uint16, desc string) int {
	start := b.header(uint16(nftMsgBase|msg), flags, desc, unix.NFPROTO_INET, 0)
	b.lastOp = start
	b.ops++
	return start
}

func (b *batch) end(start int) {
	binary.NativeEndian.PutUint32(b.buf[start:], uint32(len(b.buf)-start))
}

func (b *batch) attr(typ uint16, data []byte) {
	var h [nlaHdrLen]byte
	binary.NativeEndian.PutUint16(h[0:], uint16(nlaHdrLen+len(data)))
	binary.NativeEndian.PutUint16(h[2:], typ)
	b.buf = append(b.buf, h[:]...)
	b.buf = append(b.buf, data...)
	for len(b.buf)%4 != 0 {
		b.buf = append(b.buf, 0)
	}
}

func (b *batch) str(typ uint16, s string) { b.attr(typ, append([]byte(s), 0)) }

func (b *batch) u32(typ uint16, v uint32) { b.attr(typ, binary.BigEndian.AppendUint32(nil, v)) }

func (b *batch) nest(typ uint16) int {
	start := len(b.buf)
	b.buf = append(b.buf, 0, 0, 0, 0)
	binary.NativeEndian.PutUint16(b.buf[start+2:], typ|nlaNested)
	return start
}

func (b *batch) endNest(start int) {
	n := len(b.buf) - start
	if n > maxAttrLen {
		b.setErr(fmt.Errorf("netlink attribute of %d bytes exceeds the 64 KiB limit (%s)", n, b.descs[len(b.descs)-1]))
		return
	}
	binary.NativeEndian.PutUint16(b.buf[start:], uint16(n))
}

func (b *batch) setErr(err error) {
	if b.err == nil {
		b.err = err
	}
}

// close appends BATCH_END and puts the ack flag on the last operation, the
// one message whose answer tells us the kernel has processed the batch.
func (b *batch) close() {
	if b.ops > 0 {
		f := binary.NativeEndian.Uint16(b.buf[b.lastOp+6:])
		binary.NativeEndian.PutUint16(b.buf[b.lastOp+6:], f|unix.NLM_F_ACK)
	}
	s := b.header(unix.NFNL_MSG_BATCH_END, 0, "batch end", unix.AF_UNSPEC, unix.NFNL_SUBSYS_NFTABLES)
	b.end(s)
}

// lastOpSeq is the sequence number of the acked operation.
func (b *batch) lastOpSeq() uint32 { return binary.NativeEndian.Uint32(b.buf[b.lastOp+8:]) }

// desc names the operation with sequence number seq, for error messages.
func (b *batch) desc(seq uint32) string {
	i := int(seq - b.firstSeq)
	if i < 0 || i >= len(b.descs) {
		return fmt.Sprintf("message %d", seq)
	}
	return b.descs[i]
}

func (b *batch) addTable() {
	s := b.op(unix.NFT_MSG_NEWTABLE, unix.NLM_F_CREATE, "add table")
	b.str(unix.NFTA_TABLE_NAME, tableName)
	b.u32(unix.NFTA_TABLE_FLAGS, 0)
	b.end(s)
}

func (b *batch) delTable() {
	s := b.op(unix.NFT_MSG_DELTABLE, 0, "delete table")
	b.str(unix.NFTA_TABLE_NAME, tableName)
	b.end(s)
}

// addChain creates a chain; comment (informational, not compared on a
// resync) is what `nft list` shows next to it, e.g. the policy's ID.
func (b *batch) addChain(name string, base *baseChain, comment string) {
	s := b.op(unix.NFT_MSG_NEWCHAIN, unix.NLM_F_CREATE, "add chain "+name)
	b.str(unix.NFTA_CHAIN_TABLE, tableName)
	b.str(unix.NFTA_CHAIN_NAME, name)
	if base != nil {
		n := b.nest(unix.NFTA_CHAIN_HOOK)
		b.u32(unix.NFTA_HOOK_HOOKNUM, base.hook)
		b.u32(unix.NFTA_HOOK_PRIORITY, uint32(base.prio))
		b.endNest(n)
		b.u32(unix.NFTA_CHAIN_POLICY, nfAccept)
		b.str(unix.NFTA_CHAIN_TYPE, base.typ)
	}
	if comment != "" {
		if len(comment) > udataMax {
			comment = comment[:udataMax]
		}
		b.attr(nftaChainUserdata, userdata.AppendString(nil, udataChainComment, comment))
	}
	b.end(s)
}

func (b *batch) flushChain(name string) {
	s := b.op(unix.NFT_MSG_DELRULE, 0, "flush chain "+name)
	b.str(unix.NFTA_RULE_TABLE, tableName)
	b.str(unix.NFTA_RULE_CHAIN, name)
	b.end(s)
}

func (b *batch) delChain(name string) {
	s := b.op(unix.NFT_MSG_DELCHAIN, 0, "delete chain "+name)
	b.str(unix.NFTA_CHAIN_TABLE, tableName)
	b.str(unix.NFTA_CHAIN_NAME, name)
	b.end(s)
}

// addRule appends r to chain, creating its anonymous sets first. The rule's
// comment is hash, which is how a later read recognises it.
func (b *batch) addRule(chain string, r rule, hash string) {
	for _, a := range r.anon {
		b.setID++
		a.lookup.SetID = b.setID
		b.addSet("__set%d", b.setID, a.typ, "", true)
		b.elems(unix.NFT_MSG_NEWSETELEM, "__set%d", b.setID, a.typ, a.elems)
	}
	s := b.op(unix.NFT_MSG_NEWRULE, unix.NLM_F_CREATE|unix.NLM_F_APPEND, "add rule to "+chain+": "+r.text)
	b.str(unix.NFTA_RULE_TABLE, tableName)
	b.str(unix.NFTA_RULE_CHAIN, chain)
	n := b.nest(unix.NFTA_RULE_EXPRESSIONS)
	for _, e := range r.exprs {
		data, err := expr.Marshal(unix.NFPROTO_INET, e)
		if err != nil {
			b.setErr(fmt.Errorf("encode rule %q: %w", r.text, err))
			return
		}
		b.attr(unix.NFTA_LIST_ELEM|nlaNested, data)
	}
	b.endNest(n)
	b.attr(unix.NFTA_RULE_USERDATA, userdata.AppendString(nil, userdata.TypeComment, hash))
	b.end(s)
}

// addSet creates a named set (id 0 gets a fresh batch ID) or, with anon,
// an anonymous constant set bound to the next rule.
func (b *batch) addSet(name string, id uint32, t setType, comment string, anon bool) {
	if id == 0 {
		b.setID++
		id = b.setID
	}
	s := b.op(unix.NFT_MSG_NEWSET, unix.NLM_F_CREATE, "add set "+name)
	b.str(unix.NFTA_SET_TABLE, tableName)
	b.str(unix.NFTA_SET_NAME, name)
	var flags uint32
	if anon {
		flags |= unix.NFT_SET_ANONYMOUS | unix.NFT_SET_CONSTANT
	}
	if t.interval {
		flags |= unix.NFT_SET_INTERVAL
	}
	if t.isMap() {
		flags |= unix.NFT_SET_MAP
	}
	if t.concat() {
		flags |= nftables.NFT_SET_CONCAT
	}
	b.u32(unix.NFTA_SET_FLAGS, flags)
	b.u32(unix.NFTA_SET_KEY_TYPE, t.key.GetNFTMagic())
	b.u32(unix.NFTA_SET_KEY_LEN, uint32(t.keyLen()))
	if t.vmap {
		b.u32(unix.NFTA_SET_DATA_TYPE, unix.NFT_DATA_VERDICT)
	}
	if t.isData() {
		b.u32(unix.NFTA_SET_DATA_TYPE, t.data.GetNFTMagic())
		b.u32(unix.NFTA_SET_DATA_LEN, uint32(fieldsLen(t.dataFields)))
	}
	b.u32(unix.NFTA_SET_ID, id)
	if t.concat() {
		d := b.nest(unix.NFTA_SET_DESC)
		c := b.nest(nftaSetDescConcat)
		for _, f := range t.fields {
			e := b.nest(unix.NFTA_LIST_ELEM)
			b.u32(nftaSetFieldLen, f)
			b.endNest(e)
		}
		b.endNest(c)
		b.endNest(d)
	}
	var ud []byte
	if t.byteOrder != 0 {
		ud = userdata.AppendUint32(ud, userdata.NFTNL_UDATA_SET_KEYBYTEORDER, t.byteOrder)
	}
	if comment != "" {
		if len(comment) > udataMax {
			comment = comment[:udataMax]
		}
		ud = userdata.AppendString(ud, userdata.NFTNL_UDATA_SET_COMMENT, comment)
	}
	if len(ud) > 0 {
		b.attr(unix.NFTA_SET_USERDATA, ud)
	}
	b.end(s)
}

func (b *batch) delSet(name string) {
	s := b.op(unix.NFT_MSG_DELSET, 0, "delete set "+name)
	b.str(unix.NFTA_SET_TABLE, tableName)
	b.str(unix.NFTA_SET_NAME, name)
	b.end(s)
}

// elems adds (NFT_MSG_NEWSETELEM) or deletes (NFT_MSG_DELSETELEM) elements,
// split over as many messages as the 64 KiB attribute limit needs.
func (b *batch) elems(msg int, set string, id uint32, t setType, es []elem) {
	verb := "add"
	if msg == unix.NFT_MSG_DELSETELEM {
		verb = "delete"
	}
	for len(es) > 0 {
		var flags uint16
		if msg == unix.NFT_MSG_NEWSETELEM {
			flags = unix.NLM_F_CREATE
		}
		s := b.op(msg, flags, fmt.Sprintf("%s %d elements of set %s (first %s)", verb, len(es), set, t.elemText(es[0])))
		b.str(unix.NFTA_SET_ELEM_LIST_TABLE, tableName)
		b.str(unix.NFTA_SET_ELEM_LIST_SET, set)
		if id != 0 {
			b.u32(unix.NFTA_SET_ELEM_LIST_SET_ID, id)
		}
		list := b.nest(unix.NFTA_SET_ELEM_LIST_ELEMENTS)
		n := 0
		for n < len(es) && len(b.buf)-list < elemChunkSize {
			b.elem(t, es[n])
			n++
		}
		b.endNest(list)
		b.end(s)
		es = es[n:]
	}
}

func (b *batch) elem(t setType, e elem) {
	key := func(typ uint16, v []byte) {
		k := b.nest(typ)
		b.attr(unix.NFTA_DATA_VALUE, v)
		b.endNest(k)
	}
	n := b.nest(unix.NFTA_LIST_ELEM)
	key(unix.NFTA_SET_ELEM_KEY, e.key)
	switch {
	case t.vmap:
		kind, chain, err := parseVerdict(e.verdict)
		if err != nil {
			b.setErr(err)
			return
		}
		d := b.nest(unix.NFTA_SET_ELEM_DATA)
		v := b.nest(unix.NFTA_DATA_VERDICT)
		b.u32(unix.NFTA_VERDICT_CODE, uint32(int32(kind)))
		if chain != "" {
			b.str(unix.NFTA_VERDICT_CHAIN, chain)
		}
		b.endNest(v)
		b.endNest(d)
	case t.isData():
		key(unix.NFTA_SET_ELEM_DATA, []byte(e.verdict))
	case t.concat() && t.interval:
		key(nftaSetElemKeyEnd, e.end)
	}
	b.endNest(n)
	// An rbtree interval ends with a separate element flagged interval-end.
	if t.interval && !t.concat() && e.end != nil {
		n := b.nest(unix.NFTA_LIST_ELEM)
		b.u32(unix.NFTA_SET_ELEM_FLAGS, unix.NFT_SET_ELEM_INTERVAL_END)
		key(unix.NFTA_SET_ELEM_KEY, e.end)
		b.endNest(n)
	}
}

// parseVerdict reads "jump X", "goto X", "accept", "drop" or "return".
func parseVerdict(s string) (expr.VerdictKind, string, error) {
	word, chain, _ := strings.Cut(s, " ")
	switch word {
	case "jump":
		return expr.VerdictJump, chain, nil
	case "goto":
		return expr.VerdictGoto, chain, nil
	case "accept":
		return expr.VerdictAccept, "", nil
	case "drop":
		return expr.VerdictDrop, "", nil
	case "return":
		return expr.VerdictReturn, "", nil
	}
	return 0, "", fmt.Errorf("unknown verdict %q", s)
}

func verdictText(kind expr.VerdictKind, chain string) string {
	switch kind {
	case expr.VerdictJump:
		return "jump " + chain
	case expr.VerdictGoto:
		return "goto " + chain
	case expr.VerdictAccept:
		return "accept"
	case expr.VerdictDrop:
		return "drop"
	case expr.VerdictReturn:
		return "return"
	}
	return fmt.Sprintf("verdict %d %s", kind, chain)
}

// errBatch is an error the kernel reported for one message of a batch.
type errBatch struct {
	op    string
	errno unix.Errno
	msg   string // the kernel's extended ack message, if any
}

func (e *errBatch) Error() string {
	s := fmt.Sprintf("%s: %v", e.op, e.errno)
	if e.msg != "" {
		s += " (" + e.msg + ")"
	}
	return s
}

func (e *errBatch) Unwrap() error { return e.errno }
