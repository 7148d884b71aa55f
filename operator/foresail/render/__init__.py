"""PURE: desired child objects (Deployment, Service, PDB, Job, ResourceQuota) as dicts."""
