package config

import (
	"fmt"
	"math"
	"math/big"
	"slices"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// HCL keeps a number as an arbitrary-precision float (cty, math/big), and
// what it costs to read or print one grows with its length and its
// exponent: a literal of 2 million digits took 12-15 s to parse, and
// 1E2551617 (a mistyped value the config fuzzer found) 4-11 s to print as
// text in a diagnostic or to turn into a string, with as much memory. A
// reload waits for that, and validate and plan too. scstd's numbers are
// whole numbers below 2^63, so a file is refused, with a diagnostic at the
// number, when it holds a run of more than maxDigits digits (found before
// the parser reads the file, in strings and comments too), or a number
// literal, or arithmetic on literals, whose magnitude is 10^maxDecimalExp
// or more, or less than 10^-maxDecimalExp and not zero. Numbers made by a
// for expression from its iteration variables are not bounded here.
const (
	maxDigits      = 1000
	maxDecimalExp  = 1000
	maxBinaryExp   = 3322                // 2^3322 ≈ 10^1000.04
	decimalPerBits = 0.30102999566398120 // log10(2)
)

// checkDigitRuns returns a diagnostic for the first run of more than
// maxDigits ASCII digits in src, or nil.
func checkDigitRuns(name string, src []byte) *hcl.Diagnostic {
	run := 0
	for i, c := range src {
		if c < '0' || c > '9' {
			run = 0
			continue
		}
		if run++; run > maxDigits {
			start := i + 1 - run
			end := start
			for end < len(src) && src[end] >= '0' && src[end] <= '9' {
				end++
			}
			from := position(src, start)
			to := from
			to.Byte, to.Column = end, from.Column+end-start
			return &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Number too long",
				Detail: fmt.Sprintf("%s holds a run of %d digits here: scstd's numbers are whole numbers of at most 19 digits, and no setting takes more than %d digits in a row. Check the line for a paste or a typo.",
					name, end-start, maxDigits),
				Subject: &hcl.Range{Filename: name, Start: from, End: to},
			}
		}
	}
	return nil
}

// position returns the line and column of byte offset off in src.
func position(src []byte, off int) hcl.Pos {
	pos := hcl.Pos{Line: 1, Column: 1, Byte: off}
	for i := 0; i < off; {
		r, n := utf8.DecodeRune(src[i:off])
		if r == '\n' {
			pos.Line, pos.Column = pos.Line+1, 1
		} else {
			pos.Column++
		}
		i += n
	}
	return pos
}

// checkNumbers returns a diagnostic for each number literal of body, and
// each result of arithmetic on them (+, -, *, /, %, unary minus,
// parentheses), out of maxDecimalExp's range; of nested results out of
// range, only the innermost is reported.
func checkNumbers(body hcl.Body) hcl.Diagnostics {
	b, ok := body.(*hclsyntax.Body)
	if !ok {
		return nil
	}
	c := &numberCheck{memo: map[hclsyntax.Expression]*big.Float{}}
	c.body(b)
	// A body's attributes are met in map order.
	slices.SortFunc(c.diags, func(a, b *hcl.Diagnostic) int { return a.Subject.Start.Byte - b.Subject.Start.Byte })
	return c.diags
}

// body checks the expressions of b and of its blocks. A quoted string
// without interpolation, most of a configuration, holds no number and is
// passed over without a walk of its nodes.
func (c *numberCheck) body(b *hclsyntax.Body) {
	for _, a := range b.Attributes {
		if t, ok := a.Expr.(*hclsyntax.TemplateExpr); ok && t.IsStringLiteral() {
			continue
		}
		hclsyntax.VisitAll(a.Expr, c.visit)
	}
	for _, blk := range b.Blocks {
		c.body(blk.Body)
	}
}

// visit is hclsyntax.VisitAll's callback: every expression node is asked
// about (number memoizes what it computed).
func (c *numberCheck) visit(n hclsyntax.Node) hcl.Diagnostics {
	if e, ok := n.(hclsyntax.Expression); ok {
		c.number(e)
	}
	return nil
}

// numberCheck holds, for every expression that was asked about, its value
// when it is a number of literals within range, and nil otherwise.
type numberCheck struct {
	memo  map[hclsyntax.Expression]*big.Float
	diags hcl.Diagnostics
}

// number returns e's value when e is a number literal, or arithmetic on
// number literals, within range; nil when it is not one, or it is out of
// range (which it reports unless an operand was reported already).
func (c *numberCheck) number(e hclsyntax.Expression) *big.Float {
	var v cty.Value
	switch e := e.(type) {
	case *hclsyntax.ParenthesesExpr:
		return c.number(e.Expression)
	case *hclsyntax.LiteralValueExpr, *hclsyntax.UnaryOpExpr, *hclsyntax.BinaryOpExpr:
		if f, done := c.memo[e]; done {
			return f
		}
		if lit, ok := e.(*hclsyntax.LiteralValueExpr); ok {
			v = lit.Val
		} else {
			v = c.arithmetic(e)
		}
	default:
		return nil
	}
	if v.IsNull() || !v.IsKnown() || v.Type() != cty.Number { // cty.NilVal is null too
		c.memo[e] = nil
		return nil
	}
	f := v.AsBigFloat()
	if !inRange(f) {
		c.diags = append(c.diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Number out of range",
			Detail:   fmt.Sprintf("This number is %s. Check the value: scstd's numbers are whole numbers below 2^63 (9223372036854775807), and a number beyond 10^±%d, which HCL takes seconds to turn into text, is refused where it is written.", magnitude(f), maxDecimalExp),
			Subject:  e.Range().Ptr(),
		})
		f = nil
	}
	c.memo[e] = f
	return f
}

// arithmetic returns the value of a unary or binary operation whose
// operands are numbers within range, computed as HCL does; cty.NilVal
// when an operand is not such a number or the operation fails (HCL then
// reports it).
func (c *numberCheck) arithmetic(e hclsyntax.Expression) cty.Value {
	var (
		op   *hclsyntax.Operation
		args []cty.Value
	)
	switch e := e.(type) {
	case *hclsyntax.UnaryOpExpr:
		x := c.number(e.Val)
		if x == nil {
			return cty.NilVal
		}
		op, args = e.Op, []cty.Value{cty.NumberVal(x)}
	case *hclsyntax.BinaryOpExpr:
		x, y := c.number(e.LHS), c.number(e.RHS)
		if x == nil || y == nil {
			return cty.NilVal
		}
		op, args = e.Op, []cty.Value{cty.NumberVal(x), cty.NumberVal(y)}
	}
	if op.Type != cty.Number {
		return cty.NilVal
	}
	v, err := op.Impl.Call(args)
	if err != nil {
		return cty.NilVal
	}
	return v
}

// inRange reports whether f is zero or within 10^±maxDecimalExp (as
// powers of two, which f holds without converting it).
func inRange(f *big.Float) bool {
	if f.IsInf() {
		return false
	}
	if f.Sign() == 0 {
		return true
	}
	exp := f.MantExp(nil)
	return exp <= maxBinaryExp && exp > -maxBinaryExp
}

// magnitude describes f's size without printing its digits.
func magnitude(f *big.Float) string {
	if f.IsInf() {
		return "beyond what HCL holds"
	}
	return fmt.Sprintf("about 10^%d", int(math.Floor(float64(f.MantExp(nil))*decimalPerBits)))
}
