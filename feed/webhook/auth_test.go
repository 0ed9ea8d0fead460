package webhook

import (
	"strings"
	"testing"
)

// TestAuthorizationHeader: the Bearer scheme's name is case-insensitive,
// and a token without a scheme is refused.
func TestAuthorizationHeader(t *testing.T) {
	srv, _, _, _ := setup(t, "s3cret")
	for i, tc := range []struct {
		header []string
		query  string
		want   int
	}{
		{[]string{"Authorization", "Bearer s3cret"}, "", 200},
		{[]string{"Authorization", "bearer s3cret"}, "", 200},
		{[]string{"Authorization", "BEARER  s3cret"}, "", 200},
		{[]string{"Authorization", "s3cret"}, "", 401},
		{[]string{"Authorization", "Basic s3cret"}, "", 401},
		{[]string{"Authorization", "Bearer"}, "", 401},
		{[]string{"Authorization", "Bearers3cret"}, "", 401},
		{[]string{"Authorization", "bearer nope"}, "", 401},
		{[]string{"X-Freshen-Token", "s3cret"}, "", 200},
		{nil, "?token=s3cret", 200},
		// A sender that only takes a URL may carry an unrelated header.
		{[]string{"Authorization", "Basic dXNlcjpwdw=="}, "?token=s3cret", 200},
	} {
		body := strings.Replace(put, "KEY", "auth/"+string(rune('a'+i))+".md", 1)
		if got := post(t, srv.URL+tc.query, "application/json", body, tc.header...); got != tc.want {
			t.Errorf("%v %s: status %d, want %d", tc.header, tc.query, got, tc.want)
		}
	}
}
