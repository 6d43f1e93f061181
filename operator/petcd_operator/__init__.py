"""petcd-operator: a kopf operator that runs EtcdCluster resources."""

__version__ = "0.1.0"
