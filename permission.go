package cuttle

import "strings"

// UserRole is a set of permissions people get through their teams
// (scoped user roles). The built-in roles cannot be changed or deleted.
type UserRole struct {
	Resource
	Name                         string   `json:"Name"`
	Description                  string   `json:"Description"`
	CanBeDeleted                 bool     `json:"CanBeDeleted"`
	GrantedSpacePermissions      []string `json:"GrantedSpacePermissions"`
	GrantedSystemPermissions     []string `json:"GrantedSystemPermissions"`
	SpacePermissionDescriptions  []string `json:"SpacePermissionDescriptions"`
	SystemPermissionDescriptions []string `json:"SystemPermissionDescriptions"`
	SupportedRestrictions        []string `json:"SupportedRestrictions"`
}

// ScopedUserRole gives a team a user role, limited to projects, project
// groups, environments and tenants; an empty list does not limit.
type ScopedUserRole struct {
	Resource
	UserRoleId      string   `json:"UserRoleId"`
	TeamId          string   `json:"TeamId"`
	ProjectIds      []string `json:"ProjectIds"`
	ProjectGroupIds []string `json:"ProjectGroupIds"`
	EnvironmentIds  []string `json:"EnvironmentIds"`
	TenantIds       []string `json:"TenantIds"`
}

// System and space permissions, as Octopus names them.
var (
	SystemPermissions = []string{"AdministerSystem", "ConfigureServer", "SpaceView", "TeamCreate", "TeamEdit", "TeamDelete", "TeamView",
		"UserEdit", "UserView", "UserRoleEdit", "UserRoleView", "EventView", "TaskView", "TaskCreate", "TaskCancel", "TaskEdit"}
	SpacePermissions = []string{
		"ProjectView", "ProjectCreate", "ProjectEdit", "ProjectDelete", "ProjectGroupView", "ProjectGroupCreate", "ProjectGroupEdit", "ProjectGroupDelete",
		"ProcessView", "ProcessEdit", "VariableView", "VariableEdit", "VariableViewUnscoped", "VariableEditUnscoped",
		"ReleaseView", "ReleaseCreate", "ReleaseEdit", "ReleaseDelete", "DeploymentView", "DeploymentCreate", "DeploymentDelete",
		"EnvironmentView", "EnvironmentCreate", "EnvironmentEdit", "EnvironmentDelete",
		"MachineView", "MachineCreate", "MachineEdit", "MachineDelete", "MachinePolicyView", "MachinePolicyCreate", "MachinePolicyEdit", "MachinePolicyDelete",
		"LifecycleView", "LifecycleCreate", "LifecycleEdit", "LifecycleDelete",
		"FeedView", "FeedEdit", "BuiltInFeedPush", "BuiltInFeedAdminister", "BuiltInFeedDownload",
		"ArtifactView", "ArtifactCreate", "ArtifactEdit", "ArtifactDelete",
		"InterruptionView", "InterruptionSubmit", "InterruptionViewSubmitResponsible",
		"TaskView", "TaskCreate", "TaskCancel", "TenantView", "TenantCreate", "TenantEdit", "TenantDelete",
		"TagSetView", "TagSetCreate", "TagSetEdit", "TagSetDelete",
		"CertificateView", "CertificateCreate", "CertificateEdit", "CertificateDelete", "CertificateExportPrivateKey",
		"TeamView", "EventView"}
)

// Restrictions a scoped user role may carry.
var RoleRestrictions = []string{"ProjectIds", "ProjectGroupIds", "EnvironmentIds", "TenantIds"}

// The built-in roles' names.
const (
	RoleSystemAdministrator = "System administrator"
	RoleSystemManager       = "System manager"
	RoleProjectDeployer     = "Project deployer"
	RoleProjectContributor  = "Project contributor"
	RoleProjectViewer       = "Project viewer"
	RoleEnvironmentManager  = "Environment manager"
	RolePackagePublisher    = "Package publisher"
	RoleCertificateManager  = "Certificate manager"
)

// BuiltinRoles returns the built-in user roles, in order.
func BuiltinRoles() []UserRole {
	having := func(prefixes ...string) []string {
		var out []string
		for _, p := range SpacePermissions {
			for _, want := range prefixes {
				if p == want || (strings.HasSuffix(want, "*") && strings.HasPrefix(p, strings.TrimSuffix(want, "*"))) {
					out = append(out, p)
					break
				}
			}
		}
		return out
	}
	viewer := []string{"ProjectView", "ProjectGroupView", "ProcessView", "VariableView", "ReleaseView", "DeploymentView", "EnvironmentView",
		"LifecycleView", "TaskView", "ArtifactView", "FeedView", "InterruptionView", "TenantView", "TagSetView", "TeamView", "MachineView"}
	contributor := append(append([]string{}, viewer...), "ProjectEdit", "ProcessEdit", "VariableEdit", "VariableViewUnscoped", "VariableEditUnscoped",
		"ReleaseCreate", "ReleaseEdit", "ReleaseDelete", "ArtifactCreate", "BuiltInFeedDownload")
	deployer := append(append([]string{}, contributor...), "DeploymentCreate", "DeploymentDelete", "InterruptionSubmit", "TaskCreate", "TaskCancel")
	role := func(name, description string, space, system []string) UserRole {
		if space == nil {
			space = []string{}
		}
		if system == nil {
			system = []string{}
		}
		return UserRole{Name: name, Description: description, GrantedSpacePermissions: having(space...), GrantedSystemPermissions: system,
			SpacePermissionDescriptions: []string{}, SystemPermissionDescriptions: []string{}, SupportedRestrictions: RoleRestrictions}
	}
	return []UserRole{
		role(RoleSystemAdministrator, "Everything, in every space and of the system.", []string{"*"}, SystemPermissions),
		role(RoleSystemManager, "The system: nodes, settings, teams, users and roles; no projects.", nil,
			[]string{"ConfigureServer", "SpaceView", "TeamCreate", "TeamEdit", "TeamDelete", "TeamView", "UserEdit", "UserView", "UserRoleEdit", "UserRoleView", "EventView", "TaskView", "TaskCancel"}),
		role(RoleProjectDeployer, "Everything a project contributor may, and deploy releases.", deployer, nil),
		role(RoleProjectContributor, "Edit projects, their processes and variables; create releases. Not deploy.", contributor, nil),
		role(RoleProjectViewer, "View projects, releases, deployments and their tasks.", viewer, nil),
		role(RoleEnvironmentManager, "Environments, deployment targets and their policies.", []string{"Environment*", "Machine*", "TaskView", "TaskCreate", "ProjectView", "ProjectGroupView"}, nil),
		role(RolePackagePublisher, "Push packages to the built-in feed.", []string{"FeedView", "BuiltInFeedPush", "BuiltInFeedDownload"}, nil),
		role(RoleCertificateManager, "Certificates.", []string{"Certificate*", "EnvironmentView"}, nil),
	}
}
