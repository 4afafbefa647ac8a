package cri

import (
	"encoding/json"
	"fmt"
	"maps"
	"strconv"
	"strings"
)

// The labels lodge keeps on a CRI container, so that `docker ps` shows
// Kubernetes' names and a restarted lodged knows its pods again. Those
// under io.kubernetes.cri. are lodge's own records; the CRI's own labels
// are kept as they are, and its annotations under annotationPrefix.
const (
	labelPodName       = "io.kubernetes.pod.name"
	labelPodNamespace  = "io.kubernetes.pod.namespace"
	labelPodUID        = "io.kubernetes.pod.uid"
	labelContainerName = "io.kubernetes.container.name"
	labelSandboxID     = "io.kubernetes.sandbox.id"

	labelType        = "io.kubernetes.cri.type"
	labelAttempt     = "io.kubernetes.cri.attempt"
	labelLabels      = "io.kubernetes.cri.labels"
	labelAnnotations = "io.kubernetes.cri.annotations"
	labelImage       = "io.kubernetes.cri.image"
	labelLogPath     = "io.kubernetes.cri.log-path"
	labelPidPod      = "io.kubernetes.cri.pid-pod"
	labelPrivileged  = "io.kubernetes.cri.privileged"

	typeSandbox   = "podsandbox"
	typeContainer = "container"

	// annotationPrefix marks a CRI annotation kept as a label, as
	// dockershim did.
	annotationPrefix = "annotation."
)

// criLabels are a container's labels: the CRI's labels and annotations
// (annotations under their prefix) and lodge's records in meta.
func criLabels(labels, annotations, meta map[string]string) (map[string]string, error) {
	out := map[string]string{}
	maps.Copy(out, labels)
	for k, v := range annotations {
		out[annotationPrefix+k] = v
	}
	maps.Copy(out, meta)
	l, err := json.Marshal(orEmpty(labels))
	if err != nil {
		return nil, err
	}
	a, err := json.Marshal(orEmpty(annotations))
	if err != nil {
		return nil, err
	}
	out[labelLabels], out[labelAnnotations] = string(l), string(a)
	return out, nil
}

func orEmpty(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

// requestLabels are the CRI labels and annotations a container was
// created with, read back from its labels.
func requestLabels(l map[string]string) (labels, annotations map[string]string) {
	labels, annotations = map[string]string{}, map[string]string{}
	_ = json.Unmarshal([]byte(l[labelLabels]), &labels)           // a container lodge made: written by criLabels
	_ = json.Unmarshal([]byte(l[labelAnnotations]), &annotations) // likewise
	return labels, annotations
}

func attemptOf(l map[string]string) uint32 {
	n, _ := strconv.ParseUint(l[labelAttempt], 10, 32) // written by lodge; 0 if not
	return uint32(n)
}

// matchLabels says whether have holds every pair of want.
func matchLabels(have, want map[string]string) bool {
	for k, v := range want {
		if have[k] != v {
			return false
		}
	}
	return true
}

// sandboxName and containerName are dockershim's names: k8s_ first keeps
// them out of the way of names given through the Docker API.
func sandboxName(name, namespace, uid string, attempt uint32) string {
	return fmt.Sprintf("k8s_POD_%s_%s_%s_%d", name, namespace, uid, attempt)
}

func containerName(ctr, pod, namespace, uid string, attempt uint32) string {
	return fmt.Sprintf("k8s_%s_%s_%s_%s_%d", ctr, pod, namespace, uid, attempt)
}

// hasIDPrefix is a CRI id filter: a full ID or a prefix of one.
func hasIDPrefix(id, want string) bool {
	return want == "" || strings.HasPrefix(id, want)
}
