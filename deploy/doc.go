// Package deploy holds drum's deployment files, not Go code: the container image
// (Dockerfile), the systemd unit (drum.service) and Kubernetes manifests
// (kubernetes/). Its tests check them against the server's real configuration and
// routes.
package deploy
