"""The process kubelet: runs the Pods scheduled to its Node as local processes (see README.md)."""
