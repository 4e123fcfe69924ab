package main

import (
	"context"
	"encoding/base64"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"sigs.k8s.io/yaml"
)

// kubeconfigFile is the admin kubeconfig's name inside the data dir.
const kubeconfigFile = "kubeconfig.yaml"

// kubeconfig renders a kubeconfig for one cluster, user and context. It is
// built by hand because client-go's clientcmd must stay out of the binary.
func kubeconfig(server string, caPEM []byte, user, token string) ([]byte, error) {
	doc := map[string]any{
		"apiVersion":      "v1",
		"kind":            "Config",
		"current-context": "kedge",
		"preferences":     map[string]any{},
		"clusters": []any{map[string]any{
			"name": "kedge",
			"cluster": map[string]any{
				"server":                     server,
				"certificate-authority-data": base64.StdEncoding.EncodeToString(caPEM),
			},
		}},
		"users": []any{map[string]any{
			"name": user,
			"user": map[string]any{"token": token},
		}},
		"contexts": []any{map[string]any{
			"name":    "kedge",
			"context": map[string]any{"cluster": "kedge", "user": user, "namespace": "default"},
		}},
	}
	return yaml.Marshal(doc)
}

func runKubeconfig(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("kedge kubeconfig", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir := fs.String("data-dir", defaultServerConfig().DataDir, "the server's data directory")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	b, err := os.ReadFile(filepath.Join(*dataDir, kubeconfigFile))
	if err != nil {
		return fmt.Errorf("read kubeconfig: %w (Try: start `kedge server --data-dir %s` once; it writes the file at first start)", err, *dataDir)
	}
	_, err = stdout.Write(b)
	return err
}
