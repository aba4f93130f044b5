package scstconf

import (
	"fmt"
	"unicode/utf8"
)

// tokenKind is what a token is.
type tokenKind uint8

const (
	tokWord    tokenKind = iota // a word, unquoted and unescaped
	tokOpen                     // "{"
	tokClose                    // "}"
	tokNewline                  // the end of a line
	tokEOF                      // the end of the input
)

// token is one lexical element with the place it starts at.
type token struct {
	kind tokenKind
	text string
	line int
	col  int
}

// lexer splits scst.conf text into tokens, line by line, as scstadmin does:
// comments and escapes are resolved here, so the parser sees plain words.
type lexer struct {
	src      []byte
	file     string
	pos      int
	line     int
	lineAt   int // offset of the current line's first byte
	toks     []token
	warnings []Warning

	word     []byte
	inWord   bool
	wordLine int
	wordCol  int
}

// lex returns the tokens of src, ending with tokEOF, or the first error.
func lex(src []byte, file string) ([]token, []Warning, error) {
	l := &lexer{src: src, file: file, line: 1}
	for l.pos < len(l.src) {
		if err := l.step(); err != nil {
			return nil, nil, err
		}
	}
	l.flush()
	l.emit(tokEOF, "")
	return l.toks, l.warnings, nil
}

func (l *lexer) col() int { return l.pos - l.lineAt + 1 }

func (l *lexer) errorf(line, col int, format string, args ...any) error {
	return &Error{File: l.file, Line: line, Column: col, Msg: fmt.Sprintf(format, args...)}
}

func (l *lexer) emit(kind tokenKind, text string) {
	l.toks = append(l.toks, token{kind: kind, text: text, line: l.line, col: l.col()})
}

// flush ends the current word, if any.
func (l *lexer) flush() {
	if !l.inWord {
		return
	}
	l.toks = append(l.toks, token{kind: tokWord, text: string(l.word), line: l.wordLine, col: l.wordCol})
	l.word = l.word[:0]
	l.inWord = false
}

// startWord marks the current position as the start of a word.
func (l *lexer) startWord() {
	if !l.inWord {
		l.inWord = true
		l.wordLine, l.wordCol = l.line, l.col()
	}
}

// text checks that the byte at the current position begins printable text
// and returns the rune there and its length. Control characters other than
// tab and carriage return, and invalid UTF-8, are errors: scst.conf is a
// text file, and a binary one gets one error, not one per byte.
func (l *lexer) text() (rune, int, error) {
	r, n := utf8.DecodeRune(l.src[l.pos:])
	switch {
	case r == utf8.RuneError && n <= 1:
		return 0, 0, l.errorf(l.line, l.col(), "byte 0x%02x is not UTF-8 text; scst.conf must be a text file", l.src[l.pos])
	case r < 0x20 && r != '\t' && r != '\r' && r != '\n', r == 0x7f:
		return 0, 0, l.errorf(l.line, l.col(), "control character 0x%02x; scst.conf must be a text file", r)
	}
	return r, n, nil
}

func (l *lexer) step() error {
	r, n, err := l.text()
	if err != nil {
		return err
	}
	switch r {
	case '\n':
		l.flush()
		l.emit(tokNewline, "")
		l.pos++
		l.line++
		l.lineAt = l.pos
	case ' ', '\t', '\r':
		l.flush()
		l.pos++
	case '#':
		l.comment()
	case '\\':
		l.startWord()
		return l.escape()
	case '"':
		l.startWord()
		return l.quoted()
	case '{', '}':
		l.flush()
		if r == '{' {
			l.emit(tokOpen, "{")
		} else {
			l.emit(tokClose, "}")
		}
		l.pos++
	default:
		l.startWord()
		l.word = append(l.word, l.src[l.pos:l.pos+n]...)
		l.pos += n
	}
	return nil
}

// comment skips an unescaped "#" and the rest of its line. Inside a word
// scstadmin also removes the character before the "#"; so does this, with
// a warning, because such a word was probably meant to hold a "#".
func (l *lexer) comment() {
	if l.inWord && len(l.word) > 0 {
		// The warning names the line, not the text: the word may be a
		// CHAP secret.
		l.warnings = append(l.warnings, Warning{
			File: l.file, Line: l.line,
			Msg: "an unescaped '#' right after a word starts a comment, and scstadmin also drops the character before it; write \\# for a literal '#', as in a per-portal initiator name",
		})
		_, size := utf8.DecodeLastRune(l.word)
		l.word = l.word[:len(l.word)-size]
		if len(l.word) == 0 {
			l.inWord = false
		}
	}
	l.flush()
	for l.pos < len(l.src) && l.src[l.pos] != '\n' {
		if _, n, err := l.text(); err == nil {
			l.pos += n
		} else {
			// A binary tail inside a comment is still not text; let
			// step report it.
			return
		}
	}
}

// escape appends the character after a backslash to the word. A backslash
// at the end of a line stays a backslash, as in scstadmin. A brace cannot
// be escaped: scstadmin removes the backslash first and then reads the
// brace as a section mark.
func (l *lexer) escape() error {
	l.pos++ // the backslash
	if l.pos >= len(l.src) || l.src[l.pos] == '\n' {
		l.word = append(l.word, '\\')
		return nil
	}
	r, n, err := l.text()
	if err != nil {
		return err
	}
	if r == '{' || r == '}' {
		return l.errorf(l.line, l.col(), "%q cannot be escaped: scstadmin reads braces as section marks even after a backslash, so a value cannot contain one", r)
	}
	l.word = append(l.word, l.src[l.pos:l.pos+n]...)
	l.pos += n
	return nil
}

// quoted appends a double-quoted value, without its quotes, to the word.
func (l *lexer) quoted() error {
	line, col := l.line, l.col()
	l.pos++ // the opening quote
	for {
		if l.pos >= len(l.src) || l.src[l.pos] == '\n' {
			return l.errorf(line, col, "unterminated quoted value: add the closing '\"' on the same line")
		}
		r, n, err := l.text()
		if err != nil {
			return err
		}
		switch r {
		case '"':
			l.pos++
			return nil
		case '\\':
			if err := l.escape(); err != nil {
				return err
			}
		case '#':
			return l.errorf(l.line, l.col(), "'#' inside quotes starts a comment in scst.conf, which leaves the quote open; write \\# for a literal '#'")
		case '{', '}':
			return l.errorf(l.line, l.col(), "%q inside quotes: scstadmin reads braces as section marks even there, so a value cannot contain one", r)
		default:
			l.word = append(l.word, l.src[l.pos:l.pos+n]...)
			l.pos += n
		}
	}
}
