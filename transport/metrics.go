package transport

import (
	"net/http"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/keyraft/keyraft/audit"
)

// metrics is the node's Prometheus registry: gauges read from the node
// at scrape time (seal, seal health, Raft, audit head, members) and the
// requests the pipeline answered, by operation and status.
type metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	handler  http.Handler
}

func newMetrics(n Node, sinks func() []audit.DeviceStatus) *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	b := func(v bool) float64 {
		if v {
			return 1
		}
		return 0
	}
	gauge := func(name, help string, f func() float64) {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f))
	}
	gauge("keyraft_sealed", "1 while the node is sealed.", func() float64 { return b(n.Sealed()) })
	gauge("keyraft_seal_healthy", "0 while the auto-unseal seal (HSM) fails its checks: the node serves with the key in memory (degraded).",
		func() float64 { ok, _ := n.SealHealth(); return b(ok) })
	gauge("keyraft_raft_leader", "1 on the Raft leader.", func() float64 { return b(n.IsLeader()) })
	gauge("keyraft_raft_commit_index", "Raft commit index.", func() float64 { c, _ := n.RaftIndexes(); return float64(c) })
	gauge("keyraft_raft_applied_index", "Index of the last command the state machine applied.", func() float64 { _, a := n.RaftIndexes(); return float64(a) })
	gauge("keyraft_audit_head_seq", "Sequence number of the newest audit event.", func() float64 { return float64(n.AuditHeadSeq()) })
	gauge("keyraft_key_use_allowed", "1 while this node may serve key use (in contact with a leader).", func() float64 { return b(n.CheckLease() == nil) })
	gauge("keyraft_members_alive", "Members gossip sees alive (this node included).", func() float64 {
		alive := 0
		for _, mem := range n.Members() {
			if mem.Status == "alive" {
				alive++
			}
		}
		return float64(alive)
	})
	if sinks != nil {
		m.reg.MustRegister(sinkCollector(sinks))
	}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "keyraft_requests_total", Help: "Requests answered, by audit operation and HTTP status.",
	}, []string{"operation", "status"})
	m.reg.MustRegister(m.requests, prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	m.handler = promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
	return m
}

// serveMetrics answers GET sys/metrics in the Prometheus text format
// (Vault's path; its ?format=prometheus is accepted and is the only
// format).
func (a *API) serveMetrics(req *request) reply {
	if f := req.query.Get("format"); f != "" && f != "prometheus" {
		return errReply(http.StatusBadRequest, "format must be prometheus")
	}
	r := req.http
	return reply{stream: func(w http.ResponseWriter) { a.metrics.handler.ServeHTTP(w, r) }}
}

// count adds one answered request. Paths nobody serves (404, 405) count
// as operation "unknown", so strangers cannot grow the label set.
func (m *metrics) count(operation string, status int) {
	if status == 0 {
		status = http.StatusOK
	}
	if status == http.StatusNotFound || status == http.StatusMethodNotAllowed || operation == "" {
		operation = "unknown"
	}
	m.requests.WithLabelValues(operation, strconv.Itoa(status)).Inc()
}

var (
	sinkLagEvents  = prometheus.NewDesc("keyraft_audit_sink_lag_events", "Committed audit events a device running on this node has not delivered yet (devices delivered by another node are not reported).", []string{"device"}, nil)
	sinkLagSeconds = prometheus.NewDesc("keyraft_audit_sink_lag_seconds", "How long the oldest event a device has not delivered has waited.", []string{"device"}, nil)
	sinkDelivered  = prometheus.NewDesc("keyraft_audit_sink_delivered_seq", "Seq of the last event a device has delivered (confirmed by the sink).", []string{"device"}, nil)
	sinkFailing    = prometheus.NewDesc("keyraft_audit_sink_failing", "1 while a device's last attempt failed.", []string{"device"}, nil)
)

// sinkCollector reports the audit devices this node delivers, at scrape time.
type sinkCollector func() []audit.DeviceStatus

func (c sinkCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- sinkLagEvents
	ch <- sinkLagSeconds
	ch <- sinkDelivered
	ch <- sinkFailing
}

func (c sinkCollector) Collect(ch chan<- prometheus.Metric) {
	for _, st := range c() {
		if !st.Active {
			continue
		}
		name := st.Device.Name
		failing := 0.0
		if st.LastError != "" {
			failing = 1
		}
		ch <- prometheus.MustNewConstMetric(sinkLagEvents, prometheus.GaugeValue, float64(st.LagEvents), name)
		ch <- prometheus.MustNewConstMetric(sinkLagSeconds, prometheus.GaugeValue, st.LagSeconds, name)
		ch <- prometheus.MustNewConstMetric(sinkDelivered, prometheus.GaugeValue, float64(st.Delivered.Seq), name)
		ch <- prometheus.MustNewConstMetric(sinkFailing, prometheus.GaugeValue, failing, name)
	}
}
