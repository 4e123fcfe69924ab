package imagebuild

import "fmt"

// Stand-in image names, as the reference manifests use them.
const (
	Busybox     = "registry.k8s.io/busybox:latest"
	Alpine      = "alpine:latest"
	Nginx       = "nginx:latest"
	Nginx1142   = "nginx:1.14.2"
	NginxStable = "nginx:stable"
	NginxSlim   = "registry.k8s.io/nginx-slim:0.8"
	Liveness    = "registry.k8s.io/liveness:latest"
)

// nginxVersions gives each nginx stand-in the version its page names.
var nginxVersions = []struct{ name, version string }{
	{Nginx, "1.27.0"},
	{Nginx1142, "1.14.2"},
	{NginxStable, "1.26.1"},
	{NginxSlim, "0.8"},
}

// ShellImage returns a busybox shell image with the given names.
func ShellImage(busyboxPath string, names ...string) (Built, error) {
	base, err := baseLayer(busyboxPath)
	if err != nil {
		return Built{}, err
	}
	return Build(names, Config{Cmd: []string{"sh"}, Env: DefaultEnv}, base)
}

func baseLayer(busyboxPath string) ([]byte, error) {
	files, err := BusyboxFiles(busyboxPath)
	if err != nil {
		return nil, err
	}
	return LayerTar(files)
}

// StandIns builds every stand-in image: shell images, the nginx family
// (busybox httpd on port 80 serving /usr/share/nginx/html, a page naming
// each version) and liveness (/server from serverBinary, a static build of
// test/images/liveness). All share one busybox base layer.
func StandIns(busyboxPath string, serverBinary []byte) ([]Built, error) {
	base, err := baseLayer(busyboxPath)
	if err != nil {
		return nil, err
	}
	var out []Built
	for _, n := range []string{Busybox, Alpine} {
		b, err := Build([]string{n}, Config{Cmd: []string{"sh"}, Env: DefaultEnv}, base)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	// sh as PID 1 traps TERM so that a pod stops at once instead of waiting
	// out its grace period (busybox httpd installs no TERM handler).
	serve := "trap 'exit 0' TERM INT; httpd -f -p 80 -h /usr/share/nginx/html & wait"
	for _, v := range nginxVersions {
		page := fmt.Sprintf("<!DOCTYPE html>\n<html><head><title>Welcome to nginx!</title></head>\n<body><h1>Welcome to nginx!</h1>\n<p>nginx/%s (kedge stand-in: busybox httpd)</p></body></html>\n", v.version)
		layer, err := LayerTar([]File{
			{Path: "usr/share", Dir: true}, {Path: "usr/share/nginx", Dir: true}, {Path: "usr/share/nginx/html", Dir: true},
			{Path: "usr/share/nginx/html/index.html", Body: []byte(page)},
			{Path: "etc/nginx", Dir: true},
			{Path: "etc/nginx/version", Body: []byte(v.version + "\n")},
		})
		if err != nil {
			return nil, err
		}
		b, err := Build([]string{v.name}, Config{
			Cmd: []string{"sh", "-c", serve}, Env: append([]string{"NGINX_VERSION=" + v.version}, DefaultEnv...),
			ExposedPorts: []string{"80/tcp"},
		}, base, layer)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	if serverBinary != nil {
		layer, err := LayerTar([]File{{Path: "server", Mode: 0o755, Body: serverBinary}})
		if err != nil {
			return nil, err
		}
		b, err := Build([]string{Liveness}, Config{Cmd: []string{"/server"}, Env: DefaultEnv, ExposedPorts: []string{"8080/tcp"}}, base, layer)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, nil
}
