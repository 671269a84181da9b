"""A real Kubernetes control plane and real KEDA as local processes, with a pod runner that runs the chart's
pods as local processes: `make cluster`, `make autoscale-demo`, and the tests in tests/controlplane/.

    build.py     the binaries, built once from the pinned Go modules in go/
    cluster.py   etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok (via kwokctl) and KEDA
    keda.py      KEDA's CRDs, processes, certificates and the objects that route the API server to them
    kube.py      a small API client (HTTPS with the kubeconfig's certificate) and the pinned kubectl
    pods.py      the pod runner (a kubelet stand-in); services.py its Service networking
    release.py   the chart installed with helm against the local stack's Kafka and FerretDB
    local.py     all of it together, for make cluster, the demo and the tests
    autoscale.py a burst from scripts/load.py, and the timeline of lag and replicas it causes
"""
