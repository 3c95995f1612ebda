package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/cuttledeploy/cuttle"
)

// TestDocumentsListPagesAndFind: List follows the pages of a server that
// answers fewer documents than asked for; Find asks by id or by name.
func TestDocumentsListPagesAndFind(t *testing.T) {
	var names []string
	for i := 1; i <= 5; i++ {
		names = append(names, fmt.Sprint("group ", i))
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/Spaces-1/projectgroups", func(w http.ResponseWriter, r *http.Request) {
		items := []cuttle.ProjectGroup{}
		if name := r.URL.Query().Get("name"); name != "" {
			if name == "GROUP 2" {
				items = append(items, cuttle.ProjectGroup{Resource: cuttle.Resource{ID: "ProjectGroups-2"}, Name: "group 2"})
			}
		} else {
			skip, _ := strconv.Atoi(r.URL.Query().Get("skip"))
			for i := skip; i < min(skip+2, len(names)); i++ {
				items = append(items, cuttle.ProjectGroup{Resource: cuttle.Resource{ID: fmt.Sprint("ProjectGroups-", i+1)}, Name: names[i]})
			}
		}
		json.NewEncoder(w).Encode(map[string]any{"Items": items, "TotalResults": len(names), "ItemsPerPage": 2})
	})
	mux.HandleFunc("GET /api/Spaces-1/projectgroups/{id}", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("id") != "projectgroups-4" {
			w.WriteHeader(http.StatusNotFound)
			json.NewEncoder(w).Encode(map[string]any{"ErrorMessage": "There is no project group " + r.PathValue("id") + "."})
			return
		}
		json.NewEncoder(w).Encode(cuttle.ProjectGroup{Resource: cuttle.Resource{ID: "ProjectGroups-4"}, Name: "group 4"})
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	groups := (&Client{BaseURL: srv.URL}).ProjectGroups()
	ctx := context.Background()
	all, err := groups.List(ctx)
	if err != nil || len(all) != 5 || all[4].Name != "group 5" {
		t.Fatalf("List: %v, %v; want the 5 groups of 3 pages", all, err)
	}
	if g, err := groups.Find(ctx, "GROUP 2"); err != nil || g.ID != "ProjectGroups-2" {
		t.Errorf("Find by name: %v, %v", g, err)
	}
	if g, err := groups.Find(ctx, "projectgroups-4"); err != nil || g.Name != "group 4" {
		t.Errorf("Find by id: %v, %v", g, err)
	}
	if _, err := groups.Find(ctx, "group 9"); err == nil || err.Error() != `there is no project group named "group 9"` {
		t.Errorf("Find of an unknown name: %v", err)
	}
	if _, err := groups.Find(ctx, "ProjectGroups-9"); err == nil || err.Error() != "There is no project group ProjectGroups-9. [HTTP 404]" {
		t.Errorf("Find of an unknown id: %v; want the API's message", err)
	}
}

// TestAPIKeyValueKeepsItsForm: an API key's ApiKey is written back as the
// API answered it, the key itself or its hint.
func TestAPIKeyValueKeepsItsForm(t *testing.T) {
	for _, in := range []string{`"API-ABCDEFGHIJKLMNOPQRSTUVWXYZ"`, `{"HasValue":true,"Hint":"API-ABCD"}`} {
		var v APIKeyValue
		if err := json.Unmarshal([]byte(in), &v); err != nil || !v.HasValue || v.Hint != "API-ABCD" {
			t.Errorf("%s: %+v, %v", in, v, err)
		}
		if out, err := json.Marshal(v); err != nil || string(out) != in {
			t.Errorf("%s written back as %s, %v", in, out, err)
		}
	}
}
