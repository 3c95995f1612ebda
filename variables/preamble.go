package variables

import (
	"encoding/base64"
	"fmt"
	"strings"
)

// Preamble returns what comes before a script's body in its syntax: the
// functions that read variables (get_octopusvariable, $OctopusParameters)
// and set output variables (set_octopusvariable, Set-OctopusVariable),
// and that keep a file as an artifact of the task (new_octopusartifact,
// New-OctopusArtifact: a service message createArtifact with the file's
// absolute path and its name, base64 as Octopus writes them).
// names are the variables it holds, get their values. The values are in
// it, sensitive ones included: whoever carries a script seals it.
func Preamble(syntax string, names []string, get func(string) (string, bool)) string {
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	var sb strings.Builder
	switch syntax {
	case "PowerShell":
		sb.WriteString("$OctopusParameters = @{}\n")
		for _, n := range names {
			if v, ok := get(n); ok {
				fmt.Fprintf(&sb, "$OctopusParameters[[Text.Encoding]::UTF8.GetString([Convert]::FromBase64String('%s'))] = [Text.Encoding]::UTF8.GetString([Convert]::FromBase64String('%s'))\n", b64(n), b64(v))
			}
		}
		sb.WriteString(`function Set-OctopusVariable([string]$name, [string]$value, [switch]$sensitive) {
  $n = [Convert]::ToBase64String([Text.Encoding]::UTF8.GetBytes($name))
  $v = [Convert]::ToBase64String([Text.Encoding]::UTF8.GetBytes($value))
  $s = ''
  if ($sensitive) { $s = " sensitive='" + [Convert]::ToBase64String([Text.Encoding]::UTF8.GetBytes('True')) + "'" }
  Write-Host ("##octopus[setVariable name='" + $n + "' value='" + $v + "'" + $s + "]")
}
function New-OctopusArtifact([string]$path, [string]$name) {
  $full = (Resolve-Path -LiteralPath $path).Path
  if (-not $name) { $name = [IO.Path]::GetFileName($full) }
  $p = [Convert]::ToBase64String([Text.Encoding]::UTF8.GetBytes($full))
  $n = [Convert]::ToBase64String([Text.Encoding]::UTF8.GetBytes($name))
  Write-Host ("##octopus[createArtifact path='" + $p + "' name='" + $n + "']")
}
`)
	default: // Bash
		sb.WriteString("declare -A __cuttle_vars=(\n")
		for _, n := range names {
			if v, ok := get(n); ok {
				fmt.Fprintf(&sb, "  ['%s']='%s'\n", b64(strings.ToLower(n)), b64(v))
			}
		}
		sb.WriteString(`)
get_octopusvariable() {
  local k
  k=$(printf '%s' "$1" | tr '[:upper:]' '[:lower:]' | base64 -w0)
  printf '%s' "${__cuttle_vars[$k]}" | base64 -d
}
set_octopusvariable() {
  local s=""
  if [ "$3" = "-sensitive" ] || [ "$3" = "True" ]; then s=" sensitive='$(printf True | base64 -w0)'"; fi
  printf "##octopus[setVariable name='%s' value='%s'%s]\n" "$(printf '%s' "$1" | base64 -w0)" "$(printf '%s' "$2" | base64 -w0)" "$s"
}
new_octopusartifact() {
  local p n
  p=$(readlink -f -- "$1") || return 1
  n="${2:-$(basename -- "$p")}"
  printf "##octopus[createArtifact path='%s' name='%s']\n" "$(printf '%s' "$p" | base64 -w0)" "$(printf '%s' "$n" | base64 -w0)"
}
`)
	}
	return sb.String()
}
