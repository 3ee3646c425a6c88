package reconcile

import (
	"strings"
	"testing"

	"github.com/kakehi/kakehi/pkg/route"
)

func TestExternalNameServicesNeedTheFlag(t *testing.T) {
	for _, tc := range []struct {
		allow      bool
		wantDump   string
		wantReason string
	}{
		{allow: false, wantDump: "[]", wantReason: ReasonExternalNameNotAllowed},
		{allow: true, wantDump: "[upstream.example.net:443]"},
	} {
		opts := testOptions
		opts.AllowExternalName = tc.allow
		table, problems := Build(loadCase(t, "externalname"), opts, route.NewRegistry(nil).Begin(), 1)
		if !strings.Contains(table.Dump(), tc.wantDump) {
			t.Errorf("allow=%v: dump %q lacks %s", tc.allow, table.Dump(), tc.wantDump)
		}
		gotReason := ""
		if len(problems) > 0 {
			gotReason = problems[0].Reason
		}
		if gotReason != tc.wantReason {
			t.Errorf("allow=%v: problems %+v, want reason %q", tc.allow, problems, tc.wantReason)
		}
	}
}
