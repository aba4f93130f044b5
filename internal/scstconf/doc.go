// Package scstconf reads SCST's configuration file, scst.conf, as
// scstadmin(1) reads it, and converts it to scstd's HCL (Convert).
//
// # The grammar (scst.conf(5), sysfs era)
//
//	file    = { line }
//	line    = [ entry ] [ comment ] "\n"
//	entry   = word { word } [ "{" ]          a "{" opens the entry's section
//	        | "}"                            closes the innermost section
//	word    = { char | "\" any | quoted }    backslash escapes one character
//	quoted  = `"` { char | "\" any } `"`     a value with blanks
//	comment = "#" { any }                    an unescaped "#" starts it
//
// For example:
//
//	HANDLER vdisk_fileio {              entry HANDLER [vdisk_fileio], section:
//		DEVICE disk1 {                    entry DEVICE [disk1], section:
//			filename /disk1                 entry filename [/disk1]
//		}
//	}
//	TARGET_DRIVER iscsi {
//		IncomingUser "joe 12charsecret"   entry IncomingUser ["joe 12charsecret"]
//		TARGET iqn.2006-10.net.vlnb:tgt {
//			LUN 0 disk1                     entry LUN [0 disk1], no section
//			allowed_portal 10.170.7?.*      # a wildcard, not a comment
//		}
//	}
//
// What scstadmin does and this package does the same: a section's name is
// on the line that ends with "{"; "}" may also follow entries on one line
// ("LUN 0 d { read_only 1 }"); an entry may occur several times; an
// unescaped "#" inside a word starts a comment and, as scstadmin's
// documented quirk, also removes the character before it (reported as a
// warning, since "ini#10.0.0.1" was probably meant as a per-portal name and
// needs "\#").
//
// What scstadmin would silently mangle is a syntax error here, with its
// line: a "{" with no entry before it on its line (scstadmin drops the
// section), a brace inside quotes or after a backslash (scstadmin reads it
// as a section mark all the same), an unterminated quote, an unmatched "}", a section left open, and bytes
// that are not text (NUL, other control characters, invalid UTF-8). The
// pre-2.0 format ("[HANDLER vdisk]") is recognised and refused with a hint.
//
// # Conversion
//
// Convert maps the iSCSI part of a parsed file (with the devices of the
// vdisk, vcdrom and dev_disk handlers, and the ALUA device groups of
// those devices and targets: alua.go) to scstd's schema and prints it
// through config.Format, the formatter of `scstd fmt`. Everything else
// (other target drivers, other pass-through handlers, another node's
// target ports in a target group, SCST core and tuning attributes) is
// kept as comments in the output and
// reported as Notes, so that nothing is dropped silently; attributes.go
// lists what maps where. CHAP secrets never appear in a Note or in a
// kept-as-comment line: they are either written inline, with a comment
// saying how to move them out, or (Options.SecretsDir) handed back as
// files for the caller to write and referenced with file().
package scstconf
