package metrics

import (
	"slices"
	"testing"

	"github.com/brig-sandbox/brig/cgroup"
	"github.com/brig-sandbox/brig/jail"
	"github.com/brig-sandbox/brig/session"
)

// The reasons and limiter kinds counted under their own name are the
// library's: a new one there must be added here, or it counts as "other".
func TestKnownValuesAreTheLibrarys(t *testing.T) {
	for _, r := range []jail.Reason{jail.ReasonExited, jail.ReasonSignaled, jail.ReasonTimeout, jail.ReasonOutputLimit,
		jail.ReasonCanceled, jail.ReasonOOM, jail.ReasonCPUTime, jail.ReasonSeccomp} {
		if !slices.Contains(knownReasons, string(r)) {
			t.Errorf("reason %q of jail is not a known reason", r)
		}
	}
	for _, c := range []session.CellStatus{session.CellOK, session.CellError, session.CellTimeout, session.CellDead, session.CellCanceled} {
		if !slices.Contains(knownReasons, string(c)) {
			t.Errorf("cell status %q of session is not a known reason", c)
		}
	}
	for _, k := range []cgroup.Kind{cgroup.Cgroup2, cgroup.Cgroup1, cgroup.RlimitOnly} {
		if !slices.Contains(knownLimiterKinds, string(k)) {
			t.Errorf("limiter kind %q of cgroup is not a known kind", k)
		}
	}
}
