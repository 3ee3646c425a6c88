package metrics

import (
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Names of the configuration-sync metrics.
const (
	ConfigRebuildsTotal       = "kakehi_config_rebuilds_total"
	ConfigRebuildSeconds      = "kakehi_config_rebuild_duration_seconds"
	ConfigLastSyncTimestamp   = "kakehi_config_last_sync_timestamp_seconds"
	ConfigAgeSeconds          = "kakehi_config_age_seconds"
	ConfigTableVersion        = "kakehi_config_table_version"
	ConfigProblems            = "kakehi_config_problems"
	ConfigBackends            = "kakehi_config_backends"
	ConfigIngresses           = "kakehi_config_ingresses"
	ConfigRebuildResultOK     = "ok"
	ConfigRebuildResultFailed = "failed"
)

// Reconcile holds the metrics of the configuration path: how often and how
// fast the route table is rebuilt and when it was last published.
type Reconcile struct {
	Rebuilds      *prometheus.CounterVec
	RebuildTime   prometheus.Histogram
	LastSync      prometheus.Gauge
	TableVersion  prometheus.Gauge
	Problems      prometheus.Gauge
	Backends      prometheus.Gauge
	IngressesOurs prometheus.Gauge
	Age           prometheus.GaugeFunc

	lastSync atomic.Int64 // unix nanoseconds of the last publish; 0 before
}

// Synced records a successful publish now: it sets LastSync and resets
// the age that Age reports.
func (m *Reconcile) Synced(now time.Time) {
	m.lastSync.Store(now.UnixNano())
	m.LastSync.Set(float64(now.UnixNano()) / 1e9)
}

// NewReconcile returns unregistered configuration-sync metrics.
func NewReconcile() *Reconcile {
	m := &Reconcile{
		Rebuilds: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: ConfigRebuildsTotal,
			Help: "Route-table rebuilds, by result (ok, failed).",
		}, []string{"result"}),
		RebuildTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    ConfigRebuildSeconds,
			Help:    "Time to read the cache, build and publish one route table.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1},
		}),
		LastSync: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: ConfigLastSyncTimestamp,
			Help: "Unix time of the last successful route-table publish; time() minus it is the config age.",
		}),
		TableVersion: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: ConfigTableVersion,
			Help: "Version number of the route table being served.",
		}),
		Problems: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: ConfigProblems,
			Help: "Rejected fields and objects in the last build (each also has a Warning Event).",
		}),
		Backends: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: ConfigBackends,
			Help: "Backend endpoints referenced by the route table being served.",
		}),
		IngressesOurs: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: ConfigIngresses,
			Help: "Ingresses served by this controller in the last build.",
		}),
	}
	m.Age = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: ConfigAgeSeconds,
		Help: "Seconds since the route table was last published (rises while the API server is unreachable); -1 before the first.",
	}, func() float64 {
		last := m.lastSync.Load()
		if last == 0 {
			return -1
		}
		return time.Since(time.Unix(0, last)).Seconds()
	})
	return m
}

// Register registers every collector on r.
func (m *Reconcile) Register(r prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{m.Rebuilds, m.RebuildTime, m.LastSync, m.TableVersion, m.Problems, m.Backends, m.IngressesOurs, m.Age} {
		if err := r.Register(c); err != nil {
			return err
		}
	}
	return nil
}
