package podsync

import (
	"encoding/json"
	"hash/fnv"
	"strconv"

	corev1 "k8s.io/api/core/v1"
)

// HashContainer hashes the parts of a container spec whose change needs a
// new container (the image is the only one a pod update may change, but
// hashing all of them keeps a restart correct whatever the server allows).
func HashContainer(c *corev1.Container) string {
	h := fnv.New32a()
	data, _ := json.Marshal(struct {
		Image                  string
		Command, Args          []string
		Env                    []corev1.EnvVar
		WorkingDir             string
		VolumeMounts           []corev1.VolumeMount
		Resources              corev1.ResourceRequirements
		TerminationMessagePath string
	}{c.Image, c.Command, c.Args, c.Env, c.WorkingDir, c.VolumeMounts, c.Resources, c.TerminationMessagePath})
	h.Write(data)
	return strconv.FormatUint(uint64(h.Sum32()), 16)
}
