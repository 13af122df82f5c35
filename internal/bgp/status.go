package bgp

import (
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"
)

// FormatStatus prints the peer table the way `calicoctl node status` does:
// an "IPv4 BGP status" and an "IPv6 BGP status" section, each a table
// PEER ADDRESS | PEER TYPE | STATE | SINCE | INFO or "No IPvN peers found.".
//
// STATE is the protocol state as BIRD names it ("up" when the session is
// Established, "down" when it is administratively shut down, "start" while it
// is being brought up); INFO starts with the BGP session state, followed by
// any detail. SINCE is a time of day for today, a date otherwise.
func FormatStatus(w io.Writer, peers []PeerStatus) error {
	return formatStatus(w, peers, time.Now())
}

func formatStatus(w io.Writer, peers []PeerStatus, now time.Time) error {
	var b strings.Builder
	for i, family := range []string{"4", "6"} {
		if i > 0 {
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "IPv%s BGP status\n", family)
		var rows [][]string
		for _, p := range peers {
			if (family == "4") != p.Address.Unmap().Is4() {
				continue
			}
			rows = append(rows, []string{
				p.Address.Unmap().String(),
				p.Type,
				protocolState(p),
				formatSince(p.Since, now),
				strings.TrimSpace(p.State + " " + p.Info),
			})
		}
		if len(rows) == 0 {
			fmt.Fprintf(&b, "No IPv%s peers found.\n", family)
			continue
		}
		writeTable(&b, []string{"PEER ADDRESS", "PEER TYPE", "STATE", "SINCE", "INFO"}, rows)
	}
	_, err := io.WriteString(w, b.String())
	if err != nil {
		return fmt.Errorf("writing BGP status: %w", err)
	}
	return nil
}

func protocolState(p PeerStatus) string {
	switch {
	case p.AdminDown:
		return "down"
	case p.State == "Established":
		return "up"
	default:
		return "start"
	}
}

func formatSince(t, now time.Time) string {
	if t.IsZero() {
		return ""
	}
	t = t.In(now.Location())
	ty, tm, td := t.Date()
	ny, nm, nd := now.Date()
	if ty == ny && tm == nm && td == nd {
		return t.Format("15:04:05")
	}
	return t.Format("2006-01-02")
}

// writeTable draws an ASCII table with centred headings and left-aligned
// cells, as calicoctl does.
func writeTable(b *strings.Builder, head []string, rows [][]string) {
	widths := make([]int, len(head))
	for i, h := range head {
		widths[i] = utf8.RuneCountInString(h)
	}
	for _, r := range rows {
		for i, c := range r {
			widths[i] = max(widths[i], utf8.RuneCountInString(c))
		}
	}
	rule := func() {
		for _, w := range widths {
			b.WriteString("+" + strings.Repeat("-", w+2))
		}
		b.WriteString("+\n")
	}
	line := func(cells []string, centre bool) {
		for i, c := range cells {
			pad := widths[i] - utf8.RuneCountInString(c)
			left := 0
			if centre {
				left = pad / 2
			}
			b.WriteString("| " + strings.Repeat(" ", left) + c + strings.Repeat(" ", pad-left) + " ")
		}
		b.WriteString("|\n")
	}
	rule()
	line(head, true)
	rule()
	for _, r := range rows {
		line(r, false)
	}
	rule()
}
