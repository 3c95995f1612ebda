package api

import (
	"net/http"
	"strings"

	"github.com/cuttledeploy/cuttle"
)

// APIVersion is the version of the Octopus REST dialect cuttle speaks.
const APIVersion = "3.0.0"

// DefaultSpaceID is the one space of a cuttle installation.
const DefaultSpaceID = "Spaces-1"

// defaultSpaceName is the name of the default space.
const defaultSpaceName = "Default"

// rootResource is the root document at /api/ and /api/{spaceId}. Official
// clients find every route they call through its Links (exact, case-sensitive
// keys), so each resource cuttle serves has its link here.
type rootResource struct {
	Id             string
	Application    string
	Version        string
	ApiVersion     string
	InstallationId string
	Links          map[string]string
}

type spaceResource struct {
	Id                       string
	Name                     string
	Slug                     string
	Description              string
	IsDefault                bool
	TaskQueueStopped         bool
	SpaceManagersTeams       []string
	SpaceManagersTeamMembers []string
	Links                    map[string]string
}

func (s *Server) rootRoutes() {
	s.handle("GET /api", anyone, s.handleRoot)
	s.handle("GET /api/{$}", anyone, s.handleRoot)
	s.handle("GET /api/spaces", user, s.handleSpaceList)
	s.handle("GET /api/spaces/all", user, s.handleSpaceAll)
	s.handle("GET /api/spaces/{id}", user, s.handleSpaceGet)
	s.handle("GET /api/{spaceId}", user, s.handleSpaceRoot)
}

func (s *Server) root(spaceID string) rootResource {
	links := map[string]string{
		"Self":                        "/api",
		"Spaces":                      "/api/spaces{/id}{?skip,ids,take,partialName}",
		"SpaceHome":                   "/api/{spaceId}",
		"OctopusServerNodes":          "/api/octopusservernodes{/id}{?skip,take,ids,partialName}",
		"OctopusServerClusterSummary": "/api/octopusservernodes/summary",
		"Cluster":                     "/api/cluster",
		"Tasks":                       "/api/tasks{/id}{?skip,take,ids,states,node,name,active}",
		"TaskTypes":                   "/api/tasks/taskTypes",
		"Environments":                "/api/Spaces-1/environments{/id}{?name,skip,ids,take,partialName}",
		"Machines": "/api/Spaces-1/machines{/id}{?skip,take,name,ids,partialName,roles,isDisabled,healthStatuses,commStyles," +
			"tenantIds,tenantTags,environmentIds,thumbprint,deploymentId,shellNames}",
		"MachineRoles":             "/api/Spaces-1/machineroles/all",
		"CertificateConfiguration": "/api/configuration/certificates{/id}{?skip,take,ids,partialName}",
	}
	for k, v := range s.links {
		links[k] = v
	}
	id := "Root"
	if spaceID != "" {
		id = spaceID
		links["Self"] = "/api/" + spaceID
	}
	return rootResource{
		Id: id, Application: cuttle.Application, Version: cuttle.Version, ApiVersion: APIVersion,
		InstallationId: s.cluster.InstallationID, Links: links,
	}
}

func (s *Server) handleRoot(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, s.root(""))
	return nil
}

func (s *Server) handleSpaceRoot(w http.ResponseWriter, r *http.Request) error {
	if !strings.EqualFold(r.PathValue("spaceId"), DefaultSpaceID) {
		return cuttle.Errorf(cuttle.KindNotFound, "There is no space or route %q.", r.PathValue("spaceId"))
	}
	writeJSON(w, http.StatusOK, s.root(DefaultSpaceID))
	return nil
}

func defaultSpace() spaceResource {
	return spaceResource{
		Id: DefaultSpaceID, Name: defaultSpaceName, Slug: "default", Description: "The default space.", IsDefault: true,
		SpaceManagersTeams: []string{}, SpaceManagersTeamMembers: []string{},
		Links: map[string]string{"Self": "/api/spaces/" + DefaultSpaceID, "SpaceHome": "/api/" + DefaultSpaceID},
	}
}

func (s *Server) handleSpaceList(w http.ResponseWriter, r *http.Request) error {
	ids, err := idFilter(r, "Spaces-")
	if err != nil {
		return err
	}
	spaces := filterByID([]spaceResource{defaultSpace()}, ids, func(sp spaceResource) string { return sp.Id })
	return writePage(w, r, "Space", "/api/spaces", spaces)
}

func (s *Server) handleSpaceAll(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, []spaceResource{defaultSpace()})
	return nil
}

func (s *Server) handleSpaceGet(w http.ResponseWriter, r *http.Request) error {
	if !strings.EqualFold(r.PathValue("id"), DefaultSpaceID) {
		return cuttle.Errorf(cuttle.KindNotFound, "There is no space %q.", r.PathValue("id"))
	}
	writeJSON(w, http.StatusOK, defaultSpace())
	return nil
}
