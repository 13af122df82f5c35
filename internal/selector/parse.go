package selector

import (
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"
)

// maxDepth bounds parenthesis nesting so that a hostile selector cannot make
// the recursive parser (or the recursive evaluator after it) use unbounded
// stack. Real selectors nest two or three levels.
const maxDepth = 100

// MaxLen bounds a selector's length. Real selectors are short; a long list
// of values in a set stays well under it.
const MaxLen = 64 << 10

type tokKind uint8

const (
	tEOF     tokKind = iota
	tInvalid         // a lexical error; text holds the message
	tIdent           // label key or keyword; text holds it
	tString          // quoted literal; text holds the value without quotes
	tLParen
	tRParen
	tLBrace
	tRBrace
	tComma
	tEq       // ==
	tNe       // !=
	tSingleEq // = (never valid; lexed so the parser can explain)
	tNot      // !
	tAnd      // &&
	tOr       // ||
)

type token struct {
	kind tokKind
	pos  int
	text string
}

// parser is a recursive-descent parser over a lazily lexed input. Lexing on
// demand means the first problem reported is the leftmost one, whether it is
// lexical or grammatical.
type parser struct {
	in    string
	off   int   // next byte to lex
	tok   token // current lookahead token
	depth int
}

// parseRaw parses s into a tree that mirrors the text (apart from folding
// runs of '!' and normalising set literals). normalise turns it into the
// canonical tree.
func parseRaw(s string) (*node, error) {
	if len(s) > MaxLen {
		return nil, &ParseError{Input: s, Pos: MaxLen, Msg: fmt.Sprintf("selector is too long (%d bytes, at most %d)", len(s), MaxLen)}
	}
	p := &parser{in: s}
	p.advance()
	if p.tok.kind == tEOF {
		return &node{op: opAll}, nil
	}
	n, err := p.parseOr()
	if err != nil {
		return nil, err
	}
	switch p.tok.kind {
	case tEOF:
		return n, nil
	case tRParen:
		return nil, p.errorf(p.tok.pos, "unexpected ')' with no matching '('")
	default:
		return nil, p.unexpected("'&&', '||' or end of selector")
	}
}

func (p *parser) errorf(pos int, format string, args ...any) error {
	return &ParseError{Input: p.in, Pos: pos, Msg: fmt.Sprintf(format, args...)}
}

// unexpected reports the current token as not being what the grammar wants
// here, preferring a lexical error message when the token is one.
func (p *parser) unexpected(want string) error {
	if p.tok.kind == tInvalid {
		return p.errorf(p.tok.pos, "%s", p.tok.text)
	}
	return p.errorf(p.tok.pos, "expected %s, found %s", want, describe(p.tok))
}

func describe(t token) string {
	switch t.kind {
	case tEOF:
		return "end of selector"
	case tIdent:
		return fmt.Sprintf("%q", t.text)
	case tString:
		return fmt.Sprintf("quoted string %q", t.text)
	case tLParen:
		return "'('"
	case tRParen:
		return "')'"
	case tLBrace:
		return "'{'"
	case tRBrace:
		return "'}'"
	case tComma:
		return "','"
	case tEq:
		return "'=='"
	case tNe:
		return "'!='"
	case tSingleEq:
		return "'='"
	case tNot:
		return "'!'"
	case tAnd:
		return "'&&'"
	case tOr:
		return "'||'"
	}
	return t.text
}

func (p *parser) advance() { p.tok = p.lex() }

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func isKeyChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '_' || c == '.' || c == '/' || c == '-'
}

func (p *parser) lex() token {
	for p.off < len(p.in) && isSpace(p.in[p.off]) {
		p.off++
	}
	start := p.off
	if start >= len(p.in) {
		return token{kind: tEOF, pos: start}
	}
	one := func(k tokKind) token {
		p.off++
		return token{kind: k, pos: start}
	}
	two := func(k tokKind) token {
		p.off += 2
		return token{kind: k, pos: start}
	}
	next := byte(0)
	if start+1 < len(p.in) {
		next = p.in[start+1]
	}
	switch c := p.in[start]; c {
	case '(':
		return one(tLParen)
	case ')':
		return one(tRParen)
	case '{':
		return one(tLBrace)
	case '}':
		return one(tRBrace)
	case ',':
		return one(tComma)
	case '=':
		if next == '=' {
			return two(tEq)
		}
		return one(tSingleEq)
	case '!':
		if next == '=' {
			return two(tNe)
		}
		return one(tNot)
	case '&':
		if next == '&' {
			return two(tAnd)
		}
		return token{kind: tInvalid, pos: start, text: "expected '&&', found a single '&'"}
	case '|':
		if next == '|' {
			return two(tOr)
		}
		return token{kind: tInvalid, pos: start, text: "expected '||', found a single '|'"}
	case '"', '\'':
		end := strings.IndexByte(p.in[start+1:], c)
		if end < 0 {
			return token{kind: tInvalid, pos: start, text: fmt.Sprintf("unterminated string: no closing %c", c)}
		}
		p.off = start + 1 + end + 1
		return token{kind: tString, pos: start, text: p.in[start+1 : start+1+end]}
	default:
		if isKeyChar(c) {
			end := start + 1
			for end < len(p.in) && isKeyChar(p.in[end]) {
				end++
			}
			p.off = end
			return token{kind: tIdent, pos: start, text: p.in[start:end]}
		}
		r, _ := utf8.DecodeRuneInString(p.in[start:])
		return token{kind: tInvalid, pos: start, text: fmt.Sprintf(
			"unexpected character %q (label keys use letters, digits and _ . / -; values must be quoted)", r)}
	}
}

// parseOr parses and-expressions separated by "||".
func (p *parser) parseOr() (*node, error) {
	first, err := p.parseAnd()
	if err != nil {
		return nil, err
	}
	if p.tok.kind != tOr {
		return first, nil
	}
	kids := []*node{first}
	for p.tok.kind == tOr {
		p.advance()
		n, err := p.parseAnd()
		if err != nil {
			return nil, err
		}
		kids = append(kids, n)
	}
	return &node{op: opOr, kids: kids}, nil
}

// parseAnd parses unary expressions separated by "&&".
func (p *parser) parseAnd() (*node, error) {
	first, err := p.parseUnary()
	if err != nil {
		return nil, err
	}
	if p.tok.kind != tAnd {
		return first, nil
	}
	kids := []*node{first}
	for p.tok.kind == tAnd {
		p.advance()
		n, err := p.parseUnary()
		if err != nil {
			return nil, err
		}
		kids = append(kids, n)
	}
	return &node{op: opAnd, kids: kids}, nil
}

// parseUnary folds any run of '!' into at most one negation, so "!!!!x"
// costs no stack.
func (p *parser) parseUnary() (*node, error) {
	neg := false
	for p.tok.kind == tNot {
		neg = !neg
		p.advance()
	}
	n, err := p.parsePrimary()
	if err != nil {
		return nil, err
	}
	if neg {
		n = &node{op: opNot, kids: []*node{n}}
	}
	return n, nil
}

func (p *parser) parsePrimary() (*node, error) {
	switch p.tok.kind {
	case tLParen:
		open := p.tok.pos
		p.depth++
		if p.depth > maxDepth {
			return nil, p.errorf(open, "parentheses nested more than %d deep", maxDepth)
		}
		p.advance()
		n, err := p.parseOr()
		if err != nil {
			return nil, err
		}
		if p.tok.kind != tRParen {
			return nil, p.unexpected(fmt.Sprintf("'&&', '||' or ')' to close the '(' at position %d", open))
		}
		p.depth--
		p.advance()
		return n, nil
	case tIdent:
		id := p.tok
		p.advance()
		if p.tok.kind == tLParen {
			return p.parseCall(id)
		}
		return p.parseComparison(id)
	default:
		return nil, p.unexpected("a label, has(), all(), '!' or '('")
	}
}

// parseCall parses has(key), all() and global(); the current token is the
// '(' after the function name id.
func (p *parser) parseCall(id token) (*node, error) {
	var n *node
	switch id.text {
	case "has":
		p.advance()
		if p.tok.kind != tIdent {
			return nil, p.unexpected("a label key inside has()")
		}
		n = &node{op: opHas, key: p.tok.text}
	case "all", "global":
		// Calico's evaluator treats global() exactly like all(); see doc.go.
		n = &node{op: opAll}
	default:
		return nil, p.errorf(id.pos, "unknown function %q: the functions are has(), all() and global()", id.text+"()")
	}
	p.advance()
	if p.tok.kind != tRParen {
		return nil, p.unexpected(fmt.Sprintf("')' to close %s(", id.text))
	}
	p.advance()
	return n, nil
}

const operatorList = "'==', '!=', 'in', 'not in', 'contains', 'starts with' or 'ends with'"

// parseComparison parses the operator and operand after label key id.
func (p *parser) parseComparison(id token) (*node, error) {
	n := &node{key: id.text}
	opTok := p.tok
	switch opTok.kind {
	case tEq:
		n.op = opEq
	case tNe:
		n.op = opNe
	case tSingleEq:
		return nil, p.errorf(opTok.pos, "expected '==' or '!=' after label %q, found a single '='", id.text)
	case tIdent:
		// Calico also accepts the two-word operators written as one word.
		switch opTok.text {
		case "contains":
			n.op = opContains
		case "starts", "startswith":
			n.op = opStartsWith
		case "ends", "endswith":
			n.op = opEndsWith
		case "in":
			n.op = opIn
		case "not", "notin":
			n.op = opNotIn
		default:
			return nil, p.errorf(opTok.pos, "expected an operator (%s) after label %q, found %q", operatorList, id.text, opTok.text)
		}
		p.advance()
		second := ""
		switch opTok.text {
		case "starts", "ends":
			second = "with"
		case "not":
			second = "in"
		}
		if second != "" {
			if p.tok.kind != tIdent || p.tok.text != second {
				return nil, p.unexpected(fmt.Sprintf("%q after %q", second, opTok.text))
			}
			p.advance()
		}
		if n.op == opIn || n.op == opNotIn {
			return p.parseSet(n)
		}
		return p.parseValue(n, opTok)
	default:
		return nil, p.unexpected(fmt.Sprintf("an operator (%s) after label %q", operatorList, id.text))
	}
	p.advance()
	return p.parseValue(n, opTok)
}

func (p *parser) parseValue(n *node, opTok token) (*node, error) {
	if p.tok.kind != tString {
		what := describe(opTok)
		if opTok.kind == tIdent {
			what = "'" + opTok.text + "'"
		}
		if p.tok.kind == tIdent {
			return nil, p.errorf(p.tok.pos, "expected a quoted string after %s, found %s (quote the value: '%s')", what, describe(p.tok), p.tok.text)
		}
		return nil, p.unexpected("a quoted string after " + what)
	}
	n.value = p.tok.text
	p.advance()
	return n, nil
}

// parseSet parses "{ 'a', 'b' }" into n.values, sorted and unique. A
// trailing comma is accepted, as Calico does.
func (p *parser) parseSet(n *node) (*node, error) {
	if p.tok.kind != tLBrace {
		return nil, p.unexpected("'{' to start the set of values")
	}
	p.advance()
	values := []string{}
	for p.tok.kind != tRBrace {
		if p.tok.kind != tString {
			return nil, p.unexpected("a quoted string or '}' in the set")
		}
		values = append(values, p.tok.text)
		p.advance()
		switch p.tok.kind {
		case tComma:
			p.advance()
		case tRBrace:
		default:
			return nil, p.unexpected("',' or '}' in the set")
		}
	}
	p.advance()
	slices.Sort(values)
	n.values = slices.Compact(values)
	return n, nil
}
