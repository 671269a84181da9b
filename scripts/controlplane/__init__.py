"""A real Kubernetes cluster on this machine: the control plane and KEDA as local processes, and a real node
(containerd, runc, CNI, the kubelet, kube-proxy, CoreDNS) running the chart's pods from images built from our
Dockerfiles: `make cluster`, `make autoscale-demo`, and the tests in tests/controlplane/.

    build.py     the binaries, built once from the pinned Go modules in go/
    cluster.py   etcd, kube-apiserver, kube-controller-manager, kube-scheduler (via kwokctl) and KEDA
    keda.py      KEDA's CRDs, processes, certificates and the objects that route the API server to them
    network.py   the node's bridge, its address ranges and the rules that keep every packet on this machine
    node.py      the registry, containerd, the kubelet, kube-proxy and CoreDNS
    kube.py      a small API client (HTTPS with the kubeconfig's certificate) and the pinned kubectl
    release.py   the chart installed with helm against the local stack's Kafka and FerretDB
    local.py     all of it together, for make cluster, the demo and the tests
    autoscale.py a burst from scripts/load.py, and the timeline of lag and replicas it causes
"""
