package v1alpha1

import (
	"fmt"
	"regexp"
	"time"
)

// durationRE is the pattern the CRD enforces on Duration; Parse applies it
// too, so that a value that bypassed the API server (a test, an old
// object) is judged by the same rule.
var durationRE = regexp.MustCompile(`^([0-9]{1,5}(h|m|s|ms)){1,4}$`)

// Parse returns d as a time.Duration. It fails when d does not match the
// Duration format or is not greater than zero, the same rules the API server
// applies.
func (d Duration) Parse() (time.Duration, error) {
	if !durationRE.MatchString(string(d)) {
		return 0, fmt.Errorf("duration %q: want one to four number-unit pairs with units h, m, s, ms", string(d))
	}
	v, err := time.ParseDuration(string(d))
	if err != nil {
		return 0, fmt.Errorf("duration %q: %w", string(d), err)
	}
	if v <= 0 {
		return 0, fmt.Errorf("duration %q: must be greater than zero", string(d))
	}
	return v, nil
}
