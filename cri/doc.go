// Package cri serves the Kubernetes Container Runtime Interface (gRPC,
// k8s.io/cri-api runtime/v1) over lodge's own services, beside the Docker
// API and on the same images, containers and networks. It sits at api's
// level: it sees the daemon only through interfaces declared here.
//
// A pod sandbox is a lodge container running a pause process that holds
// the pod's network, ipc and uts namespaces (pid when the pod shares
// it); the pod's containers join them through the "container:<sandbox>"
// modes, as dockershim mapped the CRI onto Docker's model (the uts one is
// Podman's, which Docker's API lacks), or stay in lodged's where the pod
// has the node's. What is not built yet answers codes.Unimplemented,
// naming what is missing.
package cri
