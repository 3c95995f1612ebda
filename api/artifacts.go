package api

import (
	"mime"
	"net/http"
	"path"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/resources"
	"github.com/cuttledeploy/cuttle/store/collection"
)

// artifactRoutes serves the files tasks kept: lists (regarding a task),
// one, its content, and delete.
func (s *Server) artifactRoutes() {
	s.links["Artifacts"] = "/api/" + DefaultSpaceID + "/artifacts{/id}{?skip,take,regarding,ids,partialName,order}"
	for _, p := range []string{"/api", "/api/" + DefaultSpaceID} {
		s.handle("GET "+p+"/artifacts", can("ArtifactView"), s.handleArtifactList)
		s.handle("GET "+p+"/artifacts/{id}", can("ArtifactView"), s.handleArtifactGet)
		s.handle("GET "+p+"/artifacts/{id}/content", can("ArtifactView"), s.handleArtifactContent)
		s.handle("DELETE "+p+"/artifacts/{id}", can("ArtifactDelete"), s.handleArtifactDelete)
	}
}

// artifactView is an artifact as Octopus serves it.
type artifactView struct {
	cuttle.Artifact
	StorageKey string `json:"StorageKey,omitempty"` // kept from clients
}

func viewArtifact(a cuttle.Artifact) artifactView {
	self := "/api/" + DefaultSpaceID + "/artifacts/" + a.ID
	a.Links = map[string]string{"Self": self, "Content": self + "/content", "ServerTask": "/api/tasks/" + a.ServerTaskId}
	return artifactView{Artifact: a}
}

// handleArtifactList lists artifacts, newest first; regarding=ServerTasks-N
// keeps a task's.
func (s *Server) handleArtifactList(w http.ResponseWriter, r *http.Request) error {
	skip, take, err := pageParams(r)
	if err != nil {
		return err
	}
	q := collection.Query{Space: DefaultSpaceID, Skip: skip, Take: take, IDs: queryIDs(r)}
	// A caller who may view the artifacts of some tasks only gets those:
	// all are read, and the page is cut from what is left.
	filtered := !callerOf(r).perms.Everywhere("ArtifactView")
	if take == 0 || filtered {
		q.Skip, q.Take = 0, -1 // an empty page, with the total
	}
	if regarding := r.URL.Query().Get("regarding"); regarding != "" {
		q.Where = map[string]any{"server_task_id": regarding}
	}
	var (
		items []artifactView
		total int
	)
	var as []cuttle.Artifact
	err = s.store.Read(r.Context(), func(tx *collection.Tx) (err error) {
		as, total, err = resources.Artifacts.List(r.Context(), tx, q)
		return err
	})
	if err != nil {
		return err
	}
	if filtered {
		kept, err := visibleOnly(as, func(a *cuttle.Artifact) error { return s.artifactAllows(r, "ArtifactView", *a) })
		if err != nil {
			return err
		}
		as, total = pageOf(kept, skip, take), len(kept)
	}
	for _, a := range as {
		items = append(items, viewArtifact(a))
	}
	if take == 0 {
		items = nil
	}
	if items == nil {
		items = []artifactView{}
	}
	writeJSON(w, http.StatusOK, newPage("Artifact", "/api/"+DefaultSpaceID+"/artifacts", items, total, skip, take))
	return nil
}

// artifactOf returns the artifact of the route's {id}, which the caller
// needs perm for (artifactAllows).
func (s *Server) artifactOf(r *http.Request, perm string) (cuttle.Artifact, error) {
	var a cuttle.Artifact
	err := s.store.Read(r.Context(), func(tx *collection.Tx) error {
		var err error
		a, err = resources.Artifacts.Get(r.Context(), tx, r.PathValue("id"))
		return err
	})
	if err != nil {
		return a, err
	}
	return a, s.artifactAllows(r, perm, a)
}

// artifactAllows returns forbidden unless the caller has perm for the task
// that kept a (taskAllows); for one whose task is gone, anywhere
// unlimited.
func (s *Server) artifactAllows(r *http.Request, perm string, a cuttle.Artifact) error {
	id, err := cuttle.ParseID(cuttle.TaskIDPrefix, a.ServerTaskId)
	if err == nil {
		t, err := s.store.Task(r.Context(), id)
		if err == nil {
			return s.taskAllows(r, perm, t)
		}
		if !cuttle.IsKind(err, cuttle.KindNotFound) {
			return err
		}
	}
	return allow(r, perm, resources.Scope{}, a.ID)
}

func (s *Server) handleArtifactGet(w http.ResponseWriter, r *http.Request) error {
	a, err := s.artifactOf(r, "ArtifactView")
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, viewArtifact(a))
	return nil
}

func (s *Server) handleArtifactContent(w http.ResponseWriter, r *http.Request) error {
	a, err := s.artifactOf(r, "ArtifactView")
	if err != nil {
		return err
	}
	f, err := s.feed.Files.Open(r.Context(), a.StorageKey)
	if err != nil {
		return cuttle.Errorf(cuttle.KindNotFound, "The file of the artifact %s is missing from shared storage.", a.ID)
	}
	defer f.Close()
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": path.Base(a.Filename)}))
	http.ServeContent(w, r, "", a.Created, f)
	return nil
}

func (s *Server) handleArtifactDelete(w http.ResponseWriter, r *http.Request) error {
	a, err := s.artifactOf(r, "ArtifactDelete")
	if err != nil {
		return err
	}
	if err := s.store.Update(r.Context(), func(tx *collection.Tx) error { return resources.Artifacts.Delete(r.Context(), tx, a.ID) }); err != nil {
		return err
	}
	if err := s.feed.Files.Delete(r.Context(), a.StorageKey); err != nil {
		s.log.Warn("an artifact's file could not be deleted", "key", a.StorageKey, "err", err)
	}
	w.WriteHeader(http.StatusOK)
	return nil
}
