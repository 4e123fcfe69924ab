package e2e

import (
	"regexp"
	"strings"
)

// regexpLine reports whether any line of out matches re.
func regexpLine(out, re string) bool {
	r := regexp.MustCompile(re)
	for _, l := range strings.Split(out, "\n") {
		if r.MatchString(strings.TrimRight(l, " ")) {
			return true
		}
	}
	return false
}
