package nats

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// checker collects the problems of one message. Its methods take the wire
// path of the field they check.
type checker struct {
	msg  string // Go type name, for ValidationError.Message
	errs []error
}

func (c *checker) add(field, reason string) {
	c.errs = append(c.errs, &ValidationError{Message: c.msg, Field: field, Reason: reason})
}

func (c *checker) err() error { return errors.Join(c.errs...) }

func (c *checker) required(field, v string) {
	if strings.TrimSpace(v) == "" {
		c.add(field, "required")
	}
}

func (c *checker) nonNegative(field string, v int64) {
	if v < 0 {
		c.add(field, "must not be negative, got "+strconv.FormatInt(v, 10))
	}
}

func (c *checker) nonNegativeFloat(field string, v float64) {
	if v < 0 || v != v { // v != v: NaN
		c.add(field, fmt.Sprintf("must be a non-negative number, got %v", v))
	}
}

func (c *checker) port(field string, v int, allowZero bool) {
	if v < 0 || v > 65535 || (v == 0 && !allowZero) {
		c.add(field, fmt.Sprintf("must be a port number (1-65535), got %d", v))
	}
}

func (c *checker) sha1(field, v string) {
	if v == "" {
		c.add(field, "required")
		return
	}
	if len(v) != 40 || strings.Trim(v, "0123456789abcdefABCDEF") != "" {
		c.add(field, fmt.Sprintf("must be 40 hexadecimal digits, got %q", v))
	}
}

// absURL checks that v is an absolute URL (scheme and host or path).
func (c *checker) absURL(field, v string, required bool) {
	if v == "" {
		if required {
			c.add(field, "required")
		}
		return
	}
	u, err := url.Parse(v)
	if err != nil {
		c.add(field, "not a URL: "+err.Error())
		return
	}
	if u.Scheme == "" || (u.Host == "" && u.Opaque == "" && u.Path == "") {
		c.add(field, fmt.Sprintf("must be an absolute URL, got %q", v))
	}
}

func (c *checker) nonEmptyEach(field string, vs []string) {
	for i, v := range vs {
		if strings.TrimSpace(v) == "" {
			c.add(fmt.Sprintf("%s[%d]", field, i), "must not be empty")
		}
	}
}

func (c *checker) env(field string, vs []string) {
	for i, v := range vs {
		k, _, ok := strings.Cut(v, "=")
		if !ok || strings.TrimSpace(k) == "" {
			c.add(fmt.Sprintf("%s[%d]", field, i), fmt.Sprintf("must be KEY=VALUE, got %q", v))
		}
	}
}

func (c *checker) state(field string, s State) {
	if !s.Valid() {
		if s == 0 {
			c.add(field, "required")
			return
		}
		c.add(field, "unknown state "+s.String())
	}
}

func (c *checker) countMap(field string, m map[string]int) {
	for k, v := range m {
		if k == "" {
			c.add(field, "empty key")
		}
		if v < 0 {
			c.add(field+"."+k, "must not be negative, got "+strconv.Itoa(v))
		}
	}
}
