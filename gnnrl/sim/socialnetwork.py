"""The built-in DeathStarBench socialNetwork application spec, derived from the upstream project.

DeathStarBench: Gan et al., "An Open-Source Benchmark Suite for Microservices and Their
Hardware-Software Implications for Cloud & Edge Systems", ASPLOS 2019; code in
``delimitrou/DeathStarBench``, folder ``socialNetwork/``.

Sources (paths inside ``socialNetwork/``):

- Workloads and their backends: ``docker-compose.yml`` and ``helm-chart/socialnetwork``
  (one Deployment per service, e.g. ``post-storage-service`` with ``post-storage-memcached``
  and ``post-storage-mongodb``).
- CPU/memory requests and limits, HPA bounds: ``helm-chart/socialnetwork/values.yaml``
  (``global.resources``: requests = limits = 100m CPU, 128Mi; ``global.hpa``:
  minReplicas 1, maxReplicas 10).
- Traffic mix: ``wrk2/scripts/social-network/mixed-workload.lua``
  (read-home-timeline 60 %, read-user-timeline 30 %, compose-post 10 %; a composed post
  has 1-6 user mentions, 1-6 urls and 1-5 media, because the script's ``for i = 0, n``
  loops run ``n + 1`` times).
- What each request calls: ``nginx-web-server/lua-scripts/wrk2-api/*`` (one Thrift call
  per HTTP request) and the handlers in ``src/``: ``ComposePostHandler.h`` (text, user,
  media, unique-id, then post-storage StorePost, user-timeline WriteUserTimeline,
  home-timeline WriteHomeTimeline), ``HomeTimelineHandler.h`` (read: Redis ZREVRANGE +
  post-storage ReadPosts; write: social-graph GetFollowers + one Redis pipeline),
  ``UserTimelineHandler.h`` (read: Redis, MongoDB when Redis holds too few posts,
  post-storage ReadPosts; write: MongoDB find-and-modify + Redis ZADD),
  ``PostStorageHandler.h`` (ReadPosts: one memcached MGET, one MongoDB ``$in`` find and one
  memcached set batch for the misses; StorePost: one MongoDB insert), ``TextHandler.h``
  (url-shorten ComposeUrls + user-mention ComposeUserMentions, each one batched call),
  ``UrlShortenHandler.h`` (one MongoDB bulk insert), ``UserMentionHandler.h`` (memcached
  MGET, MongoDB find for the misses), ``MediaHandler.h`` / ``UniqueIdHandler.h`` /
  ``UserHandler.h::ComposeCreatorWithUserId`` (no backend call).

The simulator adds callees' latencies (sequential calls); ComposePost calls its seven
callees in two parallel waves and ComposeText its two in parallel, so compose-post's
latency is over-estimated. The timeline reads, 90 % of the mix, are sequential.

The calls-per-request numbers are *computed* below (`derive_calls`) from the mix and the
handler table, not typed in. Capacities, service times, cache miss rates and start-up
delays are assumptions documented in docs/simulator.md ("socialNetwork");
`gnnrl calibrate` replaces them with your cluster's.
"""

from __future__ import annotations

from collections import defaultdict

from gnnrl.sim.spec import AppSpec, CallSpec, ServiceSpec, validate_app_spec

#: End-to-end p95 objective at nginx-thrift, ms: 2.3x the model's unloaded p95 (57 ms),
#: the same ratio as OnlineBoutique's 250 ms SLO to its ~110 ms at low load.
SLO_P95_MS = 130.0

#: Share of each wrk2 request type (mixed-workload.lua).
REQUEST_MIX: dict[str, float] = {"read_home_timeline": 0.60, "read_user_timeline": 0.30,
                                 "compose_post": 0.10}

#: Assumed share of post-storage ReadPosts calls with at least one post not in memcached
#: (StorePost writes MongoDB only, so the first read of every new post misses).
POST_CACHE_MISS = 0.2
#: Assumed share of ReadUserTimeline calls for which Redis holds too few post ids, so the
#: handler reads MongoDB and back-fills Redis with one ZADD.
USER_TIMELINE_REDIS_MISS = 0.1
#: Assumed share of ComposeUserMentions calls that miss the user cache and read MongoDB.
#: ComposeUserMentions never fills the cache itself and the wrk2 mix never logs in, so
#: every lookup is assumed to miss.
MENTION_CACHE_MISS = 1.0

#: Operation -> (workload that serves it, [(operation it calls, calls per operation)]).
#: Operations of a backend (Redis, memcached, MongoDB) call nothing.
OPERATIONS: dict[str, tuple[str, list[tuple[str, float]]]] = {
    # nginx-web-server/lua-scripts/wrk2-api/*: one Thrift call per HTTP request
    "http.read_home_timeline": ("nginx-thrift", [("home.read", 1.0)]),
    "http.read_user_timeline": ("nginx-thrift", [("user_tl.read", 1.0)]),
    "http.compose_post": ("nginx-thrift", [("compose.post", 1.0)]),
    # ComposePostHandler::ComposePost
    "compose.post": ("compose-post-service", [
        ("text.compose", 1.0), ("user.compose_creator", 1.0), ("media.compose", 1.0),
        ("unique_id.compose", 1.0), ("post.store", 1.0), ("user_tl.write", 1.0),
        ("home.write", 1.0)]),
    # TextHandler::ComposeText: one batched call each, whatever the number of urls/mentions
    "text.compose": ("text-service", [("url.compose", 1.0), ("mention.compose", 1.0)]),
    "url.compose": ("url-shorten-service", [("url_mongo.bulk_insert", 1.0)]),
    "mention.compose": ("user-mention-service", [("user_mongo.find", MENTION_CACHE_MISS)]),
    "user.compose_creator": ("user-service", []),
    "media.compose": ("media-service", []),
    "unique_id.compose": ("unique-id-service", []),
    # HomeTimelineHandler
    "home.read": ("home-timeline-service", [("home_redis.zrevrange", 1.0),
                                            ("post.read_posts", 1.0)]),
    "home.write": ("home-timeline-service", [("graph.get_followers", 1.0),
                                             ("home_redis.zadd_pipeline", 1.0)]),
    "graph.get_followers": ("social-graph-service", [("graph_redis.zrange", 1.0)]),
    # UserTimelineHandler
    "user_tl.read": ("user-timeline-service", [
        ("user_tl_redis.zrevrange", 1.0),
        ("user_tl_mongo.find", USER_TIMELINE_REDIS_MISS),
        ("user_tl_redis.zadd", USER_TIMELINE_REDIS_MISS),
        ("post.read_posts", 1.0)]),
    "user_tl.write": ("user-timeline-service", [("user_tl_mongo.find_and_modify", 1.0),
                                                ("user_tl_redis.zadd", 1.0)]),
    # PostStorageHandler
    "post.read_posts": ("post-storage-service", [
        ("post_mc.mget", 1.0), ("post_mongo.find", POST_CACHE_MISS),
        ("post_mc.set", POST_CACHE_MISS)]),
    "post.store": ("post-storage-service", [("post_mongo.insert", 1.0)]),
    # backends
    "home_redis.zrevrange": ("home-timeline-redis", []),
    "home_redis.zadd_pipeline": ("home-timeline-redis", []),
    "graph_redis.zrange": ("social-graph-redis", []),
    "user_tl_redis.zrevrange": ("user-timeline-redis", []),
    "user_tl_redis.zadd": ("user-timeline-redis", []),
    "user_tl_mongo.find": ("user-timeline-mongodb", []),
    "user_tl_mongo.find_and_modify": ("user-timeline-mongodb", []),
    "post_mc.mget": ("post-storage-memcached", []),
    "post_mc.set": ("post-storage-memcached", []),
    "post_mongo.find": ("post-storage-mongodb", []),
    "post_mongo.insert": ("post-storage-mongodb", []),
    "url_mongo.bulk_insert": ("url-shorten-mongodb", []),
    "user_mongo.find": ("user-mongodb", []),
}

#: Upstream workloads left out (the observation holds at most 20 services), and why.
DROPPED: dict[str, str] = {
    "media-memcached": "not on any path of the wrk2 mix (ComposeMedia calls no backend)",
    "media-mongodb": "not on any path of the wrk2 mix",
    "url-shorten-memcached": "not on any path of the wrk2 mix (GetExtendedUrls is a stub)",
    "user-memcached": "one MGET per composed post (0.1 per entry request); its ~0.3 ms is "
                      "folded into user-mention-service's service time",
    "social-graph-mongodb": "read only when a user's followers are not in social-graph-redis",
    "media-frontend": "serves media uploads, not in the wrk2 mix",
    "jaeger": "tracing infrastructure, not in the request path",
}


def _walk(op: str, weight: float, served: defaultdict[str, float],
          edges: defaultdict[tuple[str, str], float]) -> None:
    svc, calls = OPERATIONS[op]
    served[svc] += weight
    for callee, n in calls:
        edges[(svc, OPERATIONS[callee][0])] += weight * n
        _walk(callee, weight * n, served, edges)


def derive_calls() -> dict[tuple[str, str], float]:
    """Mean calls per request on every edge of the socialNetwork graph.

    Every request type of the mix is walked down the handler table; an edge's calls per
    request is the calls it carries divided by the requests its caller serves (so a caller
    serving several operations, e.g. home-timeline's reads and writes, gets the mix of
    both). Returns {(caller, callee): calls per caller request}.
    """
    served: defaultdict[str, float] = defaultdict(float)
    edges: defaultdict[tuple[str, str], float] = defaultdict(float)
    for request, share in REQUEST_MIX.items():
        _walk(f"http.{request}", share, served, edges)
    return {(src, dst): round(n / served[src], 6) for (src, dst), n in sorted(edges.items())}


def _svc(name: str, cap: float, st: float, startup: float, *, max_r: int = 10,
         resp_kb: float = 1.0, req_kb: float = 0.5) -> ServiceSpec:
    # helm-chart/socialnetwork/values.yaml: global.resources (requests = limits = 100m, 128Mi)
    # and global.hpa (minReplicas 1, maxReplicas 10).
    return ServiceSpec(name=name, cpu_request_m=100, mem_request_mi=128, capacity_rps=cap,
                       service_time_ms=st, startup_s=startup, min_replicas=1,
                       max_replicas=max_r, cpu_limit_m=100, resp_kb=resp_kb, req_kb=req_kb)


#: Stateful backends: one instance each (standalone Redis/memcached/MongoDB in the helm
#: chart); a second replica behind the same Service would hold different data.
BACKENDS = ("home-timeline-redis", "user-timeline-redis", "social-graph-redis",
            "post-storage-memcached", "post-storage-mongodb", "user-timeline-mongodb",
            "url-shorten-mongodb", "user-mongodb")


def socialnetwork() -> AppSpec:
    """The built-in socialNetwork spec (20 workloads: 12 services and 8 backends).

    Requests/limits are the upstream helm chart's. Capacity per pod (req/s at the 100m
    CPU limit), service time and start-up are assumptions, see docs/simulator.md.
    """
    services = [
        #    name                      cap/pod st_ms startup
        _svc("nginx-thrift",              80,   1.0,  20, resp_kb=6.0),
        _svc("compose-post-service",     120,   0.5,   5),
        _svc("home-timeline-service",    300,   0.5,   5, resp_kb=4.0),
        _svc("user-timeline-service",    250,   0.5,   5, resp_kb=4.0),
        _svc("post-storage-service",     250,   0.5,   5, resp_kb=4.0),
        _svc("social-graph-service",     400,   0.5,   5),
        _svc("user-service",             500,   0.5,   5),
        _svc("text-service",             150,   0.5,   5),
        _svc("url-shorten-service",      400,   0.5,   5),
        _svc("user-mention-service",     400,   0.8,   5),
        _svc("media-service",            500,   0.5,   5),
        _svc("unique-id-service",        500,   0.5,   5),
        _svc("home-timeline-redis",     3000,   0.3,   5, max_r=1),
        _svc("user-timeline-redis",     3000,   0.3,   5, max_r=1),
        _svc("social-graph-redis",      3000,   0.3,   5, max_r=1),
        _svc("post-storage-memcached",  4000,   0.3,   5, max_r=1, resp_kb=4.0),
        _svc("post-storage-mongodb",     300,   1.0,  10, max_r=1, resp_kb=4.0),
        _svc("user-timeline-mongodb",    300,   1.0,  10, max_r=1),
        _svc("url-shorten-mongodb",      300,   1.0,  10, max_r=1),
        _svc("user-mongodb",             300,   1.0,  10, max_r=1),
    ]
    # No service mesh in the upstream deployment: plain Thrift over TCP (mtls 0).
    calls = [CallSpec("wrk2", "nginx-thrift", 1.0, mtls=0.0, protocol="http")]
    for (src, dst), n in derive_calls().items():
        calls.append(CallSpec(src, dst, n, mtls=0.0,
                              protocol="tcp" if dst in BACKENDS else "thrift"))
    spec = AppSpec(
        name="socialnetwork",
        entry="nginx-thrift",
        slo_p95_ms=SLO_P95_MS,
        services={s.name: s for s in services},
        calls=tuple(calls),
        clients=("wrk2",),
    )
    return validate_app_spec(spec)

