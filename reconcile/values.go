package reconcile

import "github.com/scstd/scstd/internal/access"

// Values returns the change's old and new values as text, for logs: for
// an in-place change the attribute's values, a string as it is and
// anything else as the printed plan shows it ("1GiB", `["a", "b"]`,
// "(unset)"); for an addition or removal the identifying attributes of
// the object added or removed (`handler = "vdisk_nullio", size = 1GiB`),
// for a replacement those of the old and the new device. What is not
// there is "". CHAP users are named, never their secrets.
func (c Change) Values() (before, after string) {
	switch c.Op.Symbol() {
	case "+":
		return "", summarize(c.After)
	case "-":
		return summarize(c.Before), ""
	case "-/+":
		return summarize(c.Before), summarize(c.After)
	}
	return valueText(c.Attr, c.Before), valueText(c.Attr, c.After)
}

func valueText(attr string, v any) string {
	if r, ok := v.(access.Redirect); ok {
		v = r.String()
	}
	if s, ok := v.(string); ok && s != "" {
		return s
	}
	if m, ok := v.(Medium); ok && m.Filename != "" {
		return m.Filename
	}
	return formatValue(attr, v)
}
