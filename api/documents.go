package api

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/resources"
	"github.com/cuttledeploy/cuttle/store/collection"
)

// docs serves one document collection in the Octopus dialect, from its
// declaration: the space-scoped and space-less routes, the root documents'
// Link, the paged list, /all, get, create (201), modify (PUT of the whole
// resource), delete (200), ids as A,B or repeated, name and partialName.
// The hooks add what is particular to a resource; each may be nil.
type docs[T any] struct {
	def      *collection.Def[T]
	path     string // the route's collection segment, such as "projectgroups"
	link     string // the root documents' Link name, such as "ProjectGroups"
	itemType string // the list's ItemType, such as "ProjectGroup"
	// template is the root documents' Link when it is not the usual
	// path{/id}{?skip,take,ids,partialName,name}: what follows the path,
	// such as "{/id}{?skip,take,ids}".
	template string
	// inSpaces serves a collection that is not space-scoped under the
	// space's routes too (Octopus's teams: system teams are listed in
	// every space).
	inSpaces bool
	// filter makes lists take filter as another name of partialName, as
	// Octopus's users do.
	filter bool
	// params maps query parameters of lists to the column each filters on
	// (a tenant's projectId to "project_ids").
	params map[string]string
	// owner, when set, names what the documents live and die with (such
	// as "project"): users change them, and cannot create or delete them.
	owner string
	// links returns the resource's Links but Self, which docs adds.
	links func(doc *T) map[string]string
	// present takes out of a document about to be answered what is stored
	// but never shown (sealed sensitive values), and adds what depends on
	// who asks.
	present func(r *http.Request, doc *T)
	// query adds to a list's query what its own parameters ask.
	query func(r *http.Request, q *collection.Query) error
	// readOnly refuses creates, changes and deletes: the documents are made
	// and changed by the server alone (a deployment's interruptions).
	readOnly bool
	// lookup finds a document by something other than its id (a project's
	// slug, say) when a GET by id finds nothing; it answers KindNotFound
	// when that finds nothing either.
	lookup func(ctx context.Context, tx *collection.Tx, space, key string) (T, error)
	// check validates and completes a document about to be stored, inside
	// the unit of work: old is nil for a create.
	check func(ctx context.Context, tx *collection.Tx, doc, old *T) error
	// created runs in the unit of work of a create, after the insert (to
	// create what the document owns).
	created func(ctx context.Context, tx *collection.Tx, doc *T) error
	// deleting runs in the unit of work of a delete, before it (to refuse,
	// or to delete what the document owns).
	deleting func(ctx context.Context, tx *collection.Tx, doc *T) error

	// perms names the permission each action needs; where returns the
	// scope a document is in (nil: the space's or system's as a whole);
	// own, when set, lets callers view their own documents without the
	// view permission (a user themselves).
	perms perms
	where func(ctx context.Context, tx *collection.Tx, doc *T) (resources.Scope, error)
	own   func(r *http.Request, doc *T) bool
}

// perms are the permissions of the actions on a collection's documents.
type perms struct{ view, create, edit, remove string }

// allowed returns forbidden unless the caller has perm in doc's scope (or
// perm is "": any signed-in user).
func (d docs[T]) allowed(ctx context.Context, tx *collection.Tx, r *http.Request, perm string, doc *T) error {
	if perm == "" {
		return nil
	}
	at := resources.Scope{}
	if d.where != nil {
		var err error
		if at, err = d.where(ctx, tx, doc); err != nil {
			return err
		}
	}
	return allow(r, perm, at, metaOf(doc).ID)
}

// visible returns forbidden unless the caller may view doc.
func (d docs[T]) visible(ctx context.Context, tx *collection.Tx, r *http.Request, doc *T) error {
	if d.own != nil && d.own(r, doc) {
		return nil
	}
	return d.allowed(ctx, tx, r, d.perms.view, doc)
}

// filtered reports whether the caller's lists must be filtered document
// by document: they may view some of the documents, not all.
func (d docs[T]) filtered(r *http.Request) bool {
	return (d.where != nil || d.own != nil) && !callerOf(r).perms.Everywhere(d.perms.view)
}

// viewing is the access of the routes that read documents: their view
// permission, checked per document when the caller may view their own.
func (d docs[T]) viewing() access {
	if d.own != nil {
		return user
	}
	return can(d.perms.view)
}

// serveDocs registers the routes of d.
func serveDocs[T any](s *Server, d docs[T]) {
	prefixes := []string{"/api"}
	template := d.template
	if template == "" {
		template = "{/id}{?skip,take,ids,partialName,name}"
	}
	if d.def.Spaced || d.inSpaces {
		prefixes = append(prefixes, "/api/"+DefaultSpaceID)
	}
	if d.def.Spaced {
		s.links[d.link] = "/api/" + DefaultSpaceID + "/" + d.path + template
	} else {
		s.links[d.link] = "/api/" + d.path + template
	}
	create, modify, remove := d.create(s), d.modify(s), d.remove(s)
	if d.readOnly {
		refuse := func(w http.ResponseWriter, r *http.Request) error {
			return cuttle.Errorf(cuttle.KindInvalid, "%ss are made and changed by the server, not through this route.", strings.ToUpper(d.def.Noun[:1])+d.def.Noun[1:])
		}
		create, modify, remove = refuse, refuse, refuse
	}
	if d.owner != "" {
		create = func(w http.ResponseWriter, r *http.Request) error {
			return cuttle.Errorf(cuttle.KindInvalid, "%s is created with its %s and cannot be created alone.", collection.Article(d.def.Noun), d.owner)
		}
		remove = func(w http.ResponseWriter, r *http.Request) error {
			return cuttle.Errorf(cuttle.KindInvalid, "%s is deleted with its %s and cannot be deleted alone.", collection.Article(d.def.Noun), d.owner)
		}
	}
	for _, p := range prefixes {
		base := p + "/" + d.path
		s.handle("GET "+base, d.viewing(), d.list(s, false, nil))
		s.handle("GET "+base+"/all", d.viewing(), d.list(s, true, nil))
		s.handle("GET "+base+"/{id}", d.viewing(), d.get(s))
		s.handle("POST "+base, can(d.perms.create), create)
		s.handle("PUT "+base+"/{id}", can(d.perms.edit), modify)
		s.handle("DELETE "+base+"/{id}", can(d.perms.remove), remove)
	}
}

// scope narrows a list to the documents of one owner, inside the list's
// unit of work: it returns the filter on the collection's columns and the
// list's own path (for the page links), or KindNotFound for an unknown
// owner.
type scope func(ctx context.Context, tx *collection.Tx, r *http.Request) (where map[string]any, path string, err error)

// space returns the request's space for a space-scoped collection, "" for
// another. Routes exist for the one space only: any other is an unknown route.
func (d docs[T]) space(r *http.Request) (string, error) {
	if !d.def.Spaced {
		return "", nil
	}
	return DefaultSpaceID, nil
}

// self returns the path of the document of id.
func (d docs[T]) self(id string) string {
	if d.def.Spaced {
		return "/api/" + DefaultSpaceID + "/" + d.path + "/" + id
	}
	return "/api/" + d.path + "/" + id
}

// out completes doc for an answer to r: its Links, and nothing of what
// present takes out.
func (d docs[T]) out(r *http.Request, doc *T) *T {
	if d.present != nil {
		d.present(r, doc)
	}
	m := metaOf(doc)
	links := map[string]string{}
	if d.links != nil {
		links = d.links(doc)
	}
	links["Self"] = d.self(m.ID)
	m.Links = links
	return doc
}

func metaOf[T any](doc *T) *cuttle.Resource {
	return any(doc).(interface{ Meta() *cuttle.Resource }).Meta()
}

// list serves the paged list (or with all, the bare array) of the
// documents; within, when not nil, narrows it to an owner's.
func (d docs[T]) list(s *Server, all bool, within scope) handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		sp, err := d.space(r)
		if err != nil {
			return err
		}
		q := collection.Query{Space: sp, Take: -1, IDs: queryIDs(r), Name: r.URL.Query().Get("name"), PartialName: r.URL.Query().Get("partialName")}
		if d.filter && q.PartialName == "" {
			q.PartialName = r.URL.Query().Get("filter")
		}
		if !all {
			if q.Skip, q.Take, err = pageParams(r); err != nil {
				return err
			}
		}
		// take=0 asks for the total alone; a Query's Take 0 is its default
		// page, so ask for one and drop it.
		countOnly := !all && q.Take == 0
		if countOnly {
			q.Take = 1
		}
		// A caller who may view some of the documents only gets those:
		// all are read, and the page is cut from what is left.
		filtered := d.filtered(r)
		skip, take := q.Skip, q.Take
		if filtered {
			q.Skip, q.Take = 0, -1
		}
		var (
			items []T
			total int
		)
		path := strings.TrimSuffix(d.self(""), "/")
		err = s.store.Read(r.Context(), func(tx *collection.Tx) (err error) {
			if within != nil {
				if q.Where, path, err = within(r.Context(), tx, r); err != nil {
					return err
				}
			}
			if d.query != nil {
				if err := d.query(r, &q); err != nil {
					return err
				}
			}
			for param, column := range d.params {
				if v := r.URL.Query().Get(param); v != "" {
					if q.Where == nil {
						q.Where = map[string]any{}
					}
					q.Where[column] = v
				}
			}
			items, total, err = d.def.List(r.Context(), tx, q)
			if err != nil || !filtered {
				return err
			}
			kept, err := visibleOnly(items, func(doc *T) error { return d.visible(r.Context(), tx, r, doc) })
			items, total = pageOf(kept, skip, take), len(kept)
			return err
		})
		if err != nil {
			return err
		}
		q.Skip, q.Take = skip, take
		if countOnly {
			items, q.Take = items[:0], 0
		}
		for i := range items {
			d.out(r, &items[i])
		}
		if all {
			writeJSON(w, http.StatusOK, items)
			return nil
		}
		writeJSON(w, http.StatusOK, newPage(d.itemType, path, items, total, q.Skip, q.Take))
		return nil
	}
}

// queryIDs returns the ids of the request's ids parameters, given as A,B or
// repeated; nil when there are none.
func queryIDs(r *http.Request) []string {
	var ids []string
	for _, v := range r.URL.Query()["ids"] {
		for _, id := range strings.Split(v, ",") {
			if id = strings.TrimSpace(id); id != "" {
				ids = append(ids, id)
			}
		}
	}
	return ids
}

// find returns the document the route's {id} names: by id, else by the
// collection's lookup.
func (d docs[T]) find(ctx context.Context, tx *collection.Tx, sp, key string, lock bool) (T, error) {
	get := d.def.Get
	if lock {
		get = d.def.GetForUpdate
	}
	doc, err := get(ctx, tx, key)
	if err == nil && d.def.Spaced && !strings.EqualFold(metaOf(&doc).SpaceID, sp) {
		err = cuttle.Errorf(cuttle.KindNotFound, "There is no %s %q in the space %s.", d.def.Noun, key, sp)
	}
	if cuttle.IsKind(err, cuttle.KindNotFound) && d.lookup != nil {
		doc, err = d.lookup(ctx, tx, sp, key)
		if err == nil && lock {
			doc, err = d.def.GetForUpdate(ctx, tx, metaOf(&doc).ID)
		}
	}
	return doc, err
}

func (d docs[T]) get(s *Server) handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		sp, err := d.space(r)
		if err != nil {
			return err
		}
		var doc T
		err = s.store.Read(r.Context(), func(tx *collection.Tx) (err error) {
			if doc, err = d.find(r.Context(), tx, sp, r.PathValue("id"), false); err != nil {
				return err
			}
			return d.visible(r.Context(), tx, r, &doc)
		})
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, d.out(r, &doc))
		return nil
	}
}

// body decodes the request body into a document. Fields that cuttle does
// not keep are ignored, as Octopus ignores them (clients send back all
// they read); a field of the wrong type is refused. hasVersion tells
// whether the body named a Version.
func (d docs[T]) body(w http.ResponseWriter, r *http.Request) (doc T, hasVersion bool, err error) {
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return doc, false, cuttle.Errorf(cuttle.KindTooLarge, "The request body is larger than %d bytes.", maxBodyBytes)
		}
		return doc, false, &cuttle.Error{Kind: cuttle.KindInvalid, Message: "The request body could not be read.", Err: err}
	}
	if len(strings.TrimSpace(string(raw))) == 0 {
		return doc, false, cuttle.Errorf(cuttle.KindInvalid, "The request body is empty; a JSON object was expected.")
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		return doc, false, &cuttle.Error{Kind: cuttle.KindInvalid, Message: describeJSONError(err), Err: err}
	}
	var probe struct{ Version *int64 }
	json.Unmarshal(raw, &probe)
	return doc, probe.Version != nil, nil
}

// stamp records who changes doc, and when.
func stamp(r *http.Request, doc *cuttle.Resource) {
	now := time.Now().UTC().Truncate(time.Millisecond)
	doc.LastModifiedOn = &now
	doc.LastModifiedBy = me(r).Username
}

func (d docs[T]) create(s *Server) handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		sp, err := d.space(r)
		if err != nil {
			return err
		}
		doc, _, err := d.body(w, r)
		if err != nil {
			return err
		}
		m := metaOf(&doc)
		if m.SpaceID != "" && d.def.Spaced && !strings.EqualFold(m.SpaceID, sp) {
			return cuttle.Errorf(cuttle.KindInvalid, "SpaceId %q is not this route's space %s.", m.SpaceID, sp)
		}
		m.ID, m.SpaceID, m.Version = "", sp, 0
		stamp(r, m)
		err = s.store.Update(r.Context(), func(tx *collection.Tx) error {
			if d.check != nil {
				if err := d.check(r.Context(), tx, &doc, nil); err != nil {
					return err
				}
			}
			if err := d.allowed(r.Context(), tx, r, d.perms.create, &doc); err != nil {
				return err
			}
			if err := d.def.Insert(r.Context(), tx, &doc); err != nil {
				return err
			}
			if d.created != nil {
				return d.created(r.Context(), tx, &doc)
			}
			return nil
		})
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusCreated, d.out(r, &doc))
		return nil
	}
}

func (d docs[T]) modify(s *Server) handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		sp, err := d.space(r)
		if err != nil {
			return err
		}
		doc, hasVersion, err := d.body(w, r)
		if err != nil {
			return err
		}
		err = s.store.Update(r.Context(), func(tx *collection.Tx) error {
			old, err := d.find(r.Context(), tx, sp, r.PathValue("id"), true)
			if err != nil {
				return err
			}
			om, m := metaOf(&old), metaOf(&doc)
			if m.ID != "" && !strings.EqualFold(m.ID, om.ID) {
				return cuttle.Errorf(cuttle.KindInvalid, "The body's Id %q is not the route's %s.", m.ID, om.ID)
			}
			if m.SpaceID != "" && !strings.EqualFold(m.SpaceID, om.SpaceID) {
				return cuttle.Errorf(cuttle.KindInvalid, "SpaceId %q is not the %s's space %s: a %s cannot move between spaces.",
					m.SpaceID, d.def.Noun, om.SpaceID, d.def.Noun)
			}
			if err := d.allowed(r.Context(), tx, r, d.perms.edit, &old); err != nil {
				return err
			}
			m.ID, m.SpaceID = om.ID, om.SpaceID
			if !hasVersion {
				m.Version = om.Version // the client did not say which version it changes: the latest
			}
			stamp(r, m)
			if d.check != nil {
				if err := d.check(r.Context(), tx, &doc, &old); err != nil {
					return err
				}
			}
			if err := d.allowed(r.Context(), tx, r, d.perms.edit, &doc); err != nil {
				return err // moved out of the caller's scope
			}
			return d.def.Update(r.Context(), tx, &doc)
		})
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, d.out(r, &doc))
		return nil
	}
}

func (d docs[T]) remove(s *Server) handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		sp, err := d.space(r)
		if err != nil {
			return err
		}
		err = s.store.Update(r.Context(), func(tx *collection.Tx) error {
			doc, err := d.find(r.Context(), tx, sp, r.PathValue("id"), true)
			if err != nil {
				return err
			}
			if err := d.allowed(r.Context(), tx, r, d.perms.remove, &doc); err != nil {
				return err
			}
			if d.deleting != nil {
				if err := d.deleting(r.Context(), tx, &doc); err != nil {
					return err
				}
			}
			return d.def.Delete(r.Context(), tx, metaOf(&doc).ID)
		})
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, struct{}{})
		return nil
	}
}
