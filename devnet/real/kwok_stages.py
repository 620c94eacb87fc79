"""The kwok Stages of the real testbed: what the fake kubelet does to Nodes and Pods, and when.

kwok without a Stage for a kind does nothing to it, so every behaviour is here. Taken from kwok v0.8.0's
kustomize/stage/{node,pod}/fast with two deliberate changes. A pod annotated POD_IP_ANNOTATION gets that IP
(below). And **pod deletion is graceful**: kwok's fast
pod-delete removes a pod as soon as it has a deletionTimestamp; a real kubelet keeps the containers running
(the pod Running, and a validator signing) until they exit, at the latest when the grace period runs out.
Here the pod is removed exactly at metadata.deletionTimestamp, which the apiserver sets to the DELETE time
plus the grace period (terminationGracePeriodSeconds or the DELETE's gracePeriodSeconds), so termination
overlap on the real controllers is visible for as long as the workload's grace period says.
"""

from __future__ import annotations

# Where a devnet pod's node listens (its validator's loopback endpoint): the IP kwok reports for the pod, in
# place of one from its --cidr (10.244.x.x), which nothing on this machine may dial. The kube emulator reads
# the same annotation (devnet.kube.pods), so the product finds the nodes the same way on both testbeds.
POD_IP_ANNOTATION = "devnet.peersync.io/pod-ip"

NODE_ANNOTATION = "kwok.x-k8s.io/node"  # kwok manages the Nodes carrying NODE_ANNOTATION=fake
NODE_ANNOTATION_VALUE = "fake"

_NODE_STATUS = """\
      {{ $now := Now }}
      {{ $lastTransitionTime := or .metadata.creationTimestamp $now }}
      conditions:
      {{ range NodeConditions }}
      - lastHeartbeatTime: {{ $now | Quote }}
        lastTransitionTime: {{ $lastTransitionTime | Quote }}
        message: {{ .message | Quote }}
        reason: {{ .reason | Quote }}
        status: {{ .status | Quote }}
        type: {{ .type | Quote }}
      {{ end }}
"""

STAGES = f"""\
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: node-initialize
spec:
  resourceRef: {{apiGroup: v1, kind: Node}}
  selector:
    matchExpressions:
    - key: '.status.conditions.[] | select( .type == "Ready" ) | .status'
      operator: 'NotIn'
      values: ['True']
  next:
    statusTemplate: |
{_NODE_STATUS}
      addresses:
      - address: {{{{ NodeIP | Quote }}}}
        type: InternalIP
      - address: {{{{ NodeName | Quote }}}}
        type: Hostname
      allocatable: {{cpu: 1k, memory: 1Ti, pods: 1M}}
      capacity: {{cpu: 1k, memory: 1Ti, pods: 1M}}
      nodeInfo:
        architecture: amd64
        operatingSystem: linux
        kubeletVersion: {{{{ printf "kwok-%s" Version }}}}
        containerRuntimeVersion: {{{{ printf "kwok-%s" Version }}}}
        kernelVersion: {{{{ printf "kwok-%s" Version }}}}
        kubeProxyVersion: {{{{ printf "kwok-%s" Version }}}}
        bootID: ""
        machineID: ""
        osImage: ""
        systemUUID: ""
      phase: Running
---
# The node lifecycle controller marks a Node NotReady (and then evicts its pods) when its Ready heartbeat is
# older than --node-monitor-grace-period (50 s): beat well inside that.
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: node-heartbeat
spec:
  resourceRef: {{apiGroup: v1, kind: Node}}
  selector:
    matchExpressions:
    - key: '.status.phase'
      operator: 'In'
      values: ['Running']
    - key: '.status.conditions.[] | select( .type == "Ready" ) | .status'
      operator: 'In'
      values: ['True']
  delay:
    durationMilliseconds: 10000
    jitterDurationMilliseconds: 15000
  next:
    statusTemplate: |
{_NODE_STATUS}
  immediateNextStage: true
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: pod-ready
spec:
  resourceRef: {{apiGroup: v1, kind: Pod}}
  selector:
    matchExpressions:
    - key: '.metadata.deletionTimestamp'
      operator: 'DoesNotExist'
    - key: '.status.podIP'
      operator: 'DoesNotExist'
  next:
    statusTemplate: |
      {{{{ $now := Now }}}}
      conditions:
      - {{lastTransitionTime: {{{{ $now | Quote }}}}, status: "True", type: Initialized}}
      - {{lastTransitionTime: {{{{ $now | Quote }}}}, status: "True", type: Ready}}
      - {{lastTransitionTime: {{{{ $now | Quote }}}}, status: "True", type: ContainersReady}}
      - {{lastTransitionTime: {{{{ $now | Quote }}}}, status: "True", type: PodScheduled}}
      containerStatuses:
      {{{{ range .spec.containers }}}}
      - image: {{{{ .image | Quote }}}}
        name: {{{{ .name | Quote }}}}
        ready: true
        started: true
        restartCount: 0
        state:
          running:
            startedAt: {{{{ $now | Quote }}}}
      {{{{ end }}}}
      {{{{ with NodeIPWith .spec.nodeName }}}}
      hostIP: {{{{ . | Quote }}}}
      {{{{ end }}}}
      {{{{ $ip := "" }}}}
      {{{{ with .metadata.annotations }}}}{{{{ with index . "{POD_IP_ANNOTATION}" }}}}{{{{ $ip = . }}}}{{{{ end }}}}{{{{ end }}}}
      {{{{ if not $ip }}}}{{{{ with PodIPWith .spec.nodeName ( or .spec.hostNetwork false ) ( or .metadata.uid "" ) ( or .metadata.name "" ) ( or .metadata.namespace "" ) }}}}{{{{ $ip = . }}}}{{{{ end }}}}{{{{ end }}}}
      {{{{ with $ip }}}}
      podIP: {{{{ . | Quote }}}}
      {{{{ end }}}}
      phase: Running
      startTime: {{{{ $now | Quote }}}}
---
# Graceful: the pod stays as it is (Running) until its deletionTimestamp, then goes (as a kubelet whose
# containers ignore SIGTERM until SIGKILL). kwok deletes with gracePeriodSeconds=0, as a kubelet does once
# the containers are gone.
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: pod-delete
spec:
  resourceRef: {{apiGroup: v1, kind: Pod}}
  selector:
    matchExpressions:
    - key: '.metadata.deletionTimestamp'
      operator: 'Exists'
  delay:
    durationMilliseconds: 0
    durationFrom:
      expressionFrom: '.metadata.deletionTimestamp'
  next:
    delete: true
"""
