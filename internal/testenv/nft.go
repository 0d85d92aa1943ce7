package testenv

import (
	"fmt"
	"regexp"
	"strconv"
	"time"
)

// nftDurationRE is one unit of a duration as nft prints it.
var nftDurationRE = regexp.MustCompile(`(\d+)(ms|d|h|m|s)`)

// NFTDuration parses a duration as nft prints it ("1h", "59m58s820ms", "2d3h"). nft rounds what it
// prints (a 3h element read a millisecond later says "expires 2h59m59s999ms", or "3h" on a fast
// machine), so tests compare what this returns with a tolerance, never the text.
func NFTDuration(s string) (time.Duration, error) {
	units := map[string]time.Duration{"d": 24 * time.Hour, "h": time.Hour, "m": time.Minute, "s": time.Second, "ms": time.Millisecond}
	var d time.Duration
	rest := s
	for _, m := range nftDurationRE.FindAllStringSubmatchIndex(s, -1) {
		if m[0] != len(s)-len(rest) {
			break
		}
		n, err := strconv.Atoi(s[m[2]:m[3]])
		if err != nil {
			return 0, fmt.Errorf("nft duration %q: %v", s, err)
		}
		d += time.Duration(n) * units[s[m[4]:m[5]]]
		rest = s[m[1]:]
	}
	if rest != "" || s == "" {
		return 0, fmt.Errorf("nft duration %q: not a duration", s)
	}
	return d, nil
}

// NFTElement finds the element elem (an address or prefix as nft prints it) in the output of `nft list
// set` and returns its timeout and the time left until it expires, parsed. ok is false when the
// element is not there with both.
func NFTElement(listing, elem string) (timeout, expires time.Duration, ok bool) {
	re := regexp.MustCompile(`(?:^|[\s{,])` + regexp.QuoteMeta(elem) + ` timeout (\S+) expires ([0-9dhms]+)`)
	m := re.FindStringSubmatch(listing)
	if m == nil {
		return 0, 0, false
	}
	timeout, err1 := NFTDuration(m[1])
	expires, err2 := NFTDuration(m[2])
	return timeout, expires, err1 == nil && err2 == nil
}
