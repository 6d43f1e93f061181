"""`make bench`: etcd's own benchmark tool run with the same arguments against petcd and etcd."""
