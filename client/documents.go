package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/cuttledeploy/cuttle"
)

// Documents calls one document collection of the API, served the Octopus
// way: a paged list, get by id, create (POST), update (PUT of the whole
// document) and delete. T is the collection's document, such as
// cuttle.Project.
type Documents[T any] struct {
	c      *Client
	path   string // the collection's route, such as /api/Spaces-1/projects
	noun   string // a document, in errors, such as "project"
	prefix string // of the ids, such as "Projects-"
	named  bool   // the list takes ?name=
}

// listPageSize is how many documents List asks for at a time.
const listPageSize = 200

// Projects are the projects of the default space.
func (c *Client) Projects() Documents[cuttle.Project] {
	return Documents[cuttle.Project]{c: c, path: "/api/" + DefaultSpace + "/projects", noun: "project", prefix: "Projects-", named: true}
}

// ProjectGroups are the project groups of the default space.
func (c *Client) ProjectGroups() Documents[cuttle.ProjectGroup] {
	return Documents[cuttle.ProjectGroup]{c: c, path: "/api/" + DefaultSpace + "/projectgroups", noun: "project group", prefix: "ProjectGroups-", named: true}
}

// Lifecycles are the lifecycles of the default space.
func (c *Client) Lifecycles() Documents[cuttle.Lifecycle] {
	return Documents[cuttle.Lifecycle]{c: c, path: "/api/" + DefaultSpace + "/lifecycles", noun: "lifecycle", prefix: "Lifecycles-", named: true}
}

// Users are the users; a user's name is their username.
func (c *Client) Users() Documents[cuttle.User] {
	return Documents[cuttle.User]{c: c, path: "/api/users", noun: "user", prefix: cuttle.UserIDPrefix, named: true}
}

// Teams are the teams, as the default space lists them.
func (c *Client) Teams() Documents[cuttle.Team] {
	return Documents[cuttle.Team]{c: c, path: "/api/" + DefaultSpace + "/teams", noun: "team", prefix: "Teams-", named: true}
}

// APIKeys are the API keys of the user of userID ("me": the caller's).
// They have no names, and cannot be updated.
func (c *Client) APIKeys(userID string) Documents[APIKey] {
	return Documents[APIKey]{c: c, path: "/api/users/" + url.PathEscape(userID) + "/apikeys", noun: "API key", prefix: "APIKeys-"}
}

// List returns every document, asking for one page after another.
func (d Documents[T]) List(ctx context.Context) ([]T, error) {
	all := []T{}
	for {
		var page struct {
			Items        []T
			TotalResults int
		}
		path := d.path + "?skip=" + strconv.Itoa(len(all)) + "&take=" + strconv.Itoa(listPageSize)
		if err := d.c.Do(ctx, http.MethodGet, path, nil, &page); err != nil {
			return nil, err
		}
		all = append(all, page.Items...)
		if len(page.Items) == 0 || len(all) >= page.TotalResults {
			return all, nil
		}
	}
}

// Get returns the document of id.
func (d Documents[T]) Get(ctx context.Context, id string) (T, error) {
	var doc T
	err := d.c.Do(ctx, http.MethodGet, d.path+"/"+url.PathEscape(id), nil, &doc)
	return doc, err
}

// Find returns the document whose id (such as Projects-3) or name (exact,
// ignoring case) is nameOrID; a collection without names takes ids only.
// It fails if there is none.
func (d Documents[T]) Find(ctx context.Context, nameOrID string) (T, error) {
	if !d.named || d.isID(nameOrID) {
		return d.Get(ctx, nameOrID)
	}
	var page struct{ Items []T }
	if err := d.c.Do(ctx, http.MethodGet, d.path+"?name="+url.QueryEscape(nameOrID), nil, &page); err != nil {
		var zero T
		return zero, err
	}
	if len(page.Items) == 0 {
		var zero T
		return zero, fmt.Errorf("there is no %s named %q", d.noun, nameOrID)
	}
	return page.Items[0], nil
}

// isID reports whether s has the form of the collection's ids: the prefix
// (in any case) and a number.
func (d Documents[T]) isID(s string) bool {
	if len(s) <= len(d.prefix) || !strings.EqualFold(s[:len(d.prefix)], d.prefix) {
		return false
	}
	_, err := strconv.ParseUint(s[len(d.prefix):], 10, 64)
	return err == nil
}

// Create posts doc (a T, or the fields the route takes) and returns the
// document created. The API refuses a name in use (409).
func (d Documents[T]) Create(ctx context.Context, doc any) (T, error) {
	var out T
	err := d.c.Do(ctx, http.MethodPost, d.path, doc, &out)
	return out, err
}

// Update replaces the document of id with doc, which keeps the Version it
// was read at: the API refuses it (409) if the document changed since.
func (d Documents[T]) Update(ctx context.Context, id string, doc T) (T, error) {
	var out T
	err := d.c.Do(ctx, http.MethodPut, d.path+"/"+url.PathEscape(id), doc, &out)
	return out, err
}

// Delete deletes the document of id. The API refuses (409) while another
// document uses it.
func (d Documents[T]) Delete(ctx context.Context, id string) error {
	return d.c.Do(ctx, http.MethodDelete, d.path+"/"+url.PathEscape(id), nil, nil)
}

// APIKey is an API key of a user, as the API answers it.
type APIKey struct {
	Id      string
	Purpose string
	UserId  string
	Created time.Time
	Expires *time.Time
	ApiKey  APIKeyValue
	Links   map[string]string
}

// APIKeyValue is an API key's ApiKey field: the key itself (a string) in
// the answer to its creation, the only time it is shown; {HasValue, Hint}
// in every other answer.
type APIKeyValue struct {
	Key      string // only in the answer to the creation
	HasValue bool
	Hint     string
}

type apiKeyHint struct {
	HasValue bool
	Hint     string
}

// MarshalJSON writes the value as the API answered it.
func (v APIKeyValue) MarshalJSON() ([]byte, error) {
	if v.Key != "" {
		return json.Marshal(v.Key)
	}
	return json.Marshal(apiKeyHint{v.HasValue, v.Hint})
}

// UnmarshalJSON reads either form.
func (v *APIKeyValue) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var key string
		if err := json.Unmarshal(b, &key); err != nil {
			return err
		}
		*v = APIKeyValue{Key: key, HasValue: true, Hint: cuttle.APIKeyHint(key)}
		return nil
	}
	var h apiKeyHint
	err := json.Unmarshal(b, &h)
	*v = APIKeyValue{HasValue: h.HasValue, Hint: h.Hint}
	return err
}
