"""The fault schedules of `make chaos` and `make chaos-cluster` (bench/chaos_faults.py): the default
runs inject at least 50 faults with every kind present, and the node killed is the one that
leads most queues according to the management API."""
from collections import Counter

from bench import chaos, chaos_cluster
from bench.chaos_faults import (LABELS, SERVICES, cluster_cycle, leader_node, schedule, single_cycle,
                                summary)


def test_single_node_default_run_has_fifty_faults_of_every_kind():
    args = chaos.arguments([], chaos.ROUNDS, chaos.RATE)
    faults = schedule(single_cycle(), args.rounds)
    assert args.reports >= 1000
    assert len(faults) >= 50
    kinds = Counter(f.kind for f in faults)
    assert set(kinds) == {"service", "broker_restart", "store", "duplicates", "department"}
    assert {f.target for f in faults if f.kind == "service"} == set(SERVICES)
    assert kinds["broker_restart"] == args.rounds          # every round repeats the whole cycle


def test_cluster_default_run_has_fifty_faults_with_every_node_rolled_each_round():
    nodes = list(chaos_cluster.NODES)
    args = chaos.arguments([], chaos_cluster.ROUNDS, chaos_cluster.RATE)
    faults = schedule(cluster_cycle(nodes), args.rounds)
    assert args.reports >= 1000
    assert len(faults) >= 50
    kinds = Counter(f.kind for f in faults)
    assert set(kinds) == {"leader_node_kill", "node_stop_app", "service", "store", "duplicates", "department"}
    for number in range(1, args.rounds + 1):
        this_round = [f for f in faults if f.round == number]
        assert this_round[0].kind == "leader_node_kill"
        assert [f.target for f in this_round if f.kind == "node_stop_app"] == nodes
        assert {f.target for f in this_round if f.kind == "service"} == set(SERVICES)
    assert set(LABELS) >= set(kinds)


def test_skip_leaves_a_kind_out():
    faults = schedule(single_cycle(), 2, skip=("broker_restart",))
    assert len(faults) == 18 and all(f.kind != "broker_restart" for f in faults)


def test_leader_is_the_node_leading_most_queues():
    # as GET /api/queues/<vhost>?columns=name,node,leader answers: quorum queues name a leader
    rows = [{"name": "intake.reports", "leader": "chaos-b@localhost", "node": "chaos-b@localhost"},
            {"name": "dispatch.events", "leader": "chaos-b@localhost", "node": "chaos-b@localhost"},
            {"name": "scoring.events", "leader": "chaos-c@localhost", "node": "chaos-c@localhost"},
            {"name": "rpc-reply-x", "node": "chaos-a@localhost"}]           # classic: only a node
    assert leader_node(rows) == "chaos-b@localhost"


def test_leader_ties_and_empty_answers():
    rows = [{"name": "a", "leader": "chaos-c@localhost"}, {"name": "b", "leader": "chaos-a@localhost"}]
    assert leader_node(rows) == "chaos-a@localhost"
    assert leader_node([]) is None
    assert leader_node([{"name": "a"}]) is None


def test_summary_per_kind_counts_faults_not_recovered():
    records = [{"kind": "service", "recovered_s": 4.0}, {"kind": "service", "recovered_s": 9.0},
               {"kind": "service", "recovered_s": 6.0}, {"kind": "store", "recovered_s": None}]
    rows = summary(records)
    assert rows["service"]["faults"] == 3 and rows["service"]["median_s"] == 6.0
    assert rows["service"]["min_s"] == 4.0 and rows["service"]["max_s"] == 9.0
    assert rows["store"]["not_recovered"] == 1 and rows["store"]["median_s"] is None


def test_default_runs_send_their_thousand_reports_before_the_fault_window_closes():
    # issue 17: one default run of ≥ 1,000 reports and ≥ 50 faults within 20 minutes; faults begin
    # only within --max-minutes, and the load must not outlast them by design
    for rounds, rate in ((chaos.ROUNDS, chaos.RATE), (chaos_cluster.ROUNDS, chaos_cluster.RATE)):
        args = chaos.arguments([], rounds, rate)
        assert args.reports / args.rate <= args.max_minutes * 60
        assert args.max_minutes + args.probe_timeout / 60 < chaos.BAR["minutes"]
