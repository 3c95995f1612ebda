package api_test

import (
	"net/http"
	"strings"
	"testing"
)

// BenchmarkSignIn: one node's password sign-ins, one after another and
// from the machine's cores at once (b.RunParallel): the hash is the cost.
func BenchmarkSignIn(b *testing.B) {
	e := newEnv(b)
	status, body := e.do("POST", "/api/users", e.adminKey, `{"Username": "bench", "IsActive": true}`)
	if status != http.StatusCreated {
		b.Fatalf("creating a user: %d %s", status, body)
	}
	id := jsonField(b, body, "Id")
	if status, body := e.do("PUT", "/api/users/"+id+"/password", e.adminKey, `{"Password": "a benchmark password"}`); status != http.StatusOK {
		b.Fatalf("setting the password: %d %s", status, body)
	}
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := http.Post(e.srv.URL+"/api/users/login", "application/json", strings.NewReader(`{"Username": "bench", "Password": "a benchmark password"}`))
			if err != nil {
				b.Error(err)
				return
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Errorf("sign-in: %d", resp.StatusCode)
				return
			}
		}
	})
}
