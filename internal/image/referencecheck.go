package image

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Docker's reference grammar (distribution/reference), checked piece by
// piece so that a bad reference gets a line that names the piece:
//
//	reference  := name [ ":" tag ] [ "@" digest ]
//	name       := [ registry "/" ] component ( "/" component )*   at most 255 characters
//	registry   := host [ ":" port ]     a first part with '.' or ':', or "localhost"
//	component  := [a-z0-9]+ ( ( "." | "_" | "__" | "-"+ ) [a-z0-9]+ )*
//	tag        := [A-Za-z0-9_] [A-Za-z0-9_.-]{0,127}
//	digest     := "sha256:" 64 lowercase hex digits (or sha384, sha512)

const (
	maxNameLen = 255
	maxTagLen  = 128
)

// diagnose returns what is wrong with reference s in a user's words, or ""
// when it follows the grammar.
func diagnose(s string) string {
	if s == "" {
		return "it is empty"
	}
	if i := strings.Index(s, "://"); i >= 0 {
		return fmt.Sprintf("a reference has no scheme: write %s (for a registry without TLS, give pull, push or build --tls-verify=false, or set insecure = true for it in %s)",
			s[i+3:], DefaultRegistriesConf)
	}
	for _, r := range s {
		switch {
		case unicode.IsSpace(r):
			return "a reference cannot contain spaces"
		case r > unicode.MaxASCII || !unicode.IsPrint(r):
			return fmt.Sprintf("it has the character %q; a reference holds only letters, digits and . _ - / : @", r)
		}
	}
	rest := s
	if i := strings.Index(rest, "@"); i >= 0 {
		if msg := checkDigest(rest[i+1:]); msg != "" {
			return msg
		}
		rest = rest[:i]
	}
	slash := strings.LastIndex(rest, "/")
	if i := strings.Index(rest[slash+1:], ":"); i >= 0 {
		if msg := checkTag(rest[slash+2+i:]); msg != "" {
			return msg
		}
		rest = rest[:slash+1+i]
	}
	if rest == "" {
		return "the name before the tag or digest is empty"
	}
	if n := utf8.RuneCountInString(rest); n > maxNameLen {
		return fmt.Sprintf("the name is %d characters long; the most is %d", n, maxNameLen)
	}
	parts := strings.Split(rest, "/")
	if len(parts) > 1 && (strings.ContainsAny(parts[0], ".:") || parts[0] == "localhost") {
		if msg := checkRegistry(parts[0]); msg != "" {
			return msg
		}
		parts = parts[1:]
	}
	for _, c := range parts {
		if msg := checkComponent(c); msg != "" {
			return msg
		}
	}
	return ""
}

func checkTag(tag string) string {
	const chars = "a tag holds only letters, digits, '_', '.' and '-'"
	switch {
	case tag == "":
		return "the tag after ':' is empty"
	case len(tag) > maxTagLen:
		return fmt.Sprintf("the tag is %d characters long; the most is %d", len(tag), maxTagLen)
	case tag[0] == '.' || tag[0] == '-':
		return fmt.Sprintf("the tag %q starts with %q; it must start with a letter, digit or '_'", tag, tag[0])
	}
	for _, r := range tag {
		if !isAlnum(r) && !strings.ContainsRune("_.-", r) {
			return fmt.Sprintf("the tag %q has %q; %s", tag, r, chars)
		}
	}
	return ""
}

// digestLen is the number of hex digits of each algorithm's digests.
var digestLen = map[string]int{"sha256": 64, "sha384": 96, "sha512": 128}

func checkDigest(d string) string {
	if d == "" {
		return "the digest after '@' is empty"
	}
	if strings.Contains(d, "@") {
		return "it has more than one '@'"
	}
	alg, hex, ok := strings.Cut(d, ":")
	if !ok {
		return fmt.Sprintf("the digest %q has no algorithm; write it as sha256:<64 hex digits>", d)
	}
	n, known := digestLen[alg]
	if !known {
		return fmt.Sprintf("the digest algorithm %q is not one of sha256, sha384, sha512", alg)
	}
	for _, r := range hex {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f') {
			return fmt.Sprintf("the digest has %q; a %s digest is %d lowercase hex digits (0-9, a-f)", r, alg, n)
		}
	}
	if len(hex) != n {
		return fmt.Sprintf("the %s digest has %d hex digits; it needs %d", alg, len(hex), n)
	}
	return ""
}

func checkRegistry(host string) string {
	h, port, hasPort := strings.Cut(host, ":")
	if strings.HasPrefix(host, "[") { // an IPv6 address, [::1]:5000
		end := strings.Index(host, "]")
		if end < 0 {
			return fmt.Sprintf("the registry %q has '[' without ']'", host)
		}
		h, port, hasPort = host[:end+1], strings.TrimPrefix(host[end+1:], ":"), strings.HasPrefix(host[end+1:], ":")
		if !hasPort && end+1 != len(host) {
			return fmt.Sprintf("the registry %q has %q after ']'; only :PORT may follow", host, host[end+1:])
		}
	} else {
		for _, label := range strings.Split(h, ".") {
			if label == "" || label[0] == '-' || label[len(label)-1] == '-' {
				return fmt.Sprintf("the registry host %q is not a host name: each dot-separated part is letters, digits and inner '-'", h)
			}
			for _, r := range label {
				if !isAlnum(r) && r != '-' {
					return fmt.Sprintf("the registry host %q has %q; a host name holds only letters, digits, '-' and '.'", h, r)
				}
			}
		}
	}
	if hasPort {
		if port == "" {
			return fmt.Sprintf("the registry %q has ':' but no port after it", host)
		}
		for _, r := range port {
			if r < '0' || r > '9' {
				return fmt.Sprintf("the registry port %q is not a number", port)
			}
		}
	}
	return ""
}

func checkComponent(c string) string {
	switch {
	case c == "":
		return "the name has an empty part (a '/' at its start or end, or '//')"
	case strings.ToLower(c) != c:
		return "repository names must be lowercase"
	}
	for _, r := range c {
		if !isAlnum(r) && !strings.ContainsRune("._-", r) {
			return fmt.Sprintf("the name has %q; a repository name holds only lowercase letters, digits, '/' and the separators '.', '_', '__', '-'", r)
		}
	}
	if !pathComponent().MatchString(c) {
		return fmt.Sprintf("the name part %q must start and end with a lowercase letter or digit, with only '.', '_', '__' or '-' between", c)
	}
	return ""
}

func isAlnum(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9'
}

// shorten keeps a long reference readable in a message: its start and end
// with the number of characters between.
func shorten(s string) string {
	const keep = 30
	if len(s) <= 2*keep+20 {
		return fmt.Sprintf("%q", s)
	}
	return fmt.Sprintf("%q…(%d characters)…%q", s[:keep], len(s)-2*keep, s[len(s)-keep:])
}
