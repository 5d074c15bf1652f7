package filter

import (
	"fmt"
	"regexp"

	"github.com/berth-dev/berth/internal/errdefs"
)

// Pattern returns Docker's test of a name against a filter value (its
// Match): the name equals the value, or the value, as an unanchored
// regular expression, matches it. So name=web selects "web" and "webapp",
// and name=^web$ only "web". Unlike Docker, which then matches nothing, a
// value that is not a regular expression is an error.
func Pattern(value string) (func(string) bool, error) {
	re, err := regexp.Compile(value)
	if err != nil {
		return nil, fmt.Errorf("%v: %w", err, errdefs.ErrInvalidArgument)
	}
	return func(s string) bool { return s == value || re.MatchString(s) }, nil
}
