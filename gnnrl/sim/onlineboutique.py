"""The built-in OnlineBoutique application spec, derived from the upstream project.

Sources (GoogleCloudPlatform/microservices-demo):
- CPU/memory requests and limits: ``release/kubernetes-manifests.yaml``.
- Call graph: ``src/frontend/handlers.go`` (what each page calls),
  ``src/checkoutservice/main.go`` (PlaceOrder),
  ``src/recommendationservice/recommendation_server.py``
  (ListRecommendations -> ListProducts), ``src/cartservice`` (Redis per cart operation).
- Traffic mix: ``src/loadgenerator/locustfile.py`` task weights
  {index: 1, setCurrency: 2, browseProduct: 10, addToCart: 2, viewCart: 3, checkout: 1}.
  Locust's HTTP session is a ``requests.Session`` and follows redirects, so
  ``POST /setCurrency`` (302 -> ``/``) and ``POST /cart`` (302 -> ``/cart``) each cost a
  second frontend request.

The calls-per-request numbers are *computed* below from those two tables (see
`derive_calls`), not typed in. Capacity, service time and start-up delay are assumptions
documented in docs/simulator.md; `gnnrl calibrate` replaces them with your cluster's.
"""

from __future__ import annotations

from collections import defaultdict

from gnnrl.sim.spec import AppSpec, CallSpec, ServiceSpec, validate_app_spec

#: Products in the demo catalogue (src/productcatalogservice/products.json).
N_PRODUCTS = 9
#: Assumed mean number of distinct items in a cart when it is viewed or checked out.
CART_ITEMS = 1.0
#: Recommendations the frontend renders; it fetches each with GetProduct (handlers.go).
N_RECOMMENDATIONS = 4

#: RPCs each frontend handler makes, by callee (src/frontend/handlers.go).
HANDLER_CALLS: dict[str, dict[str, float]] = {
    # homeHandler: getCurrencies, getProducts, getCart, convertCurrency per product, chooseAd
    "home": {"currencyservice": 1 + N_PRODUCTS, "productcatalogservice": 1,
             "cartservice": 1, "adservice": 1},
    # productHandler: getProduct, getCurrencies, getCart, convertCurrency,
    # getRecommendations (+ GetProduct per recommendation), chooseAd
    "product": {"productcatalogservice": 1 + N_RECOMMENDATIONS, "currencyservice": 2,
                "cartservice": 1, "recommendationservice": 1, "adservice": 1},
    # setCurrencyHandler: sets a cookie only
    "set_currency": {},
    # addToCartHandler: getProduct, insertCart
    "add_to_cart": {"productcatalogservice": 1, "cartservice": 1},
    # viewCartHandler: getCurrencies, getCart, getRecommendations, getShippingQuote,
    # convertCurrency(shipping), per item getProduct + convertCurrency
    "view_cart": {"currencyservice": 2 + CART_ITEMS, "cartservice": 1,
                  "recommendationservice": 1,
                  "productcatalogservice": N_RECOMMENDATIONS + CART_ITEMS,
                  "shippingservice": 1},
    # placeOrderHandler: PlaceOrder, getRecommendations, getCurrencies
    "place_order": {"checkoutservice": 1, "recommendationservice": 1,
                    "productcatalogservice": N_RECOMMENDATIONS, "currencyservice": 1},
}

#: Frontend requests each locust task issues (redirects followed).
TASK_REQUESTS: dict[str, list[str]] = {
    "index": ["home"],
    "setCurrency": ["set_currency", "home"],
    "browseProduct": ["product"],
    "addToCart": ["product", "add_to_cart", "view_cart"],
    "viewCart": ["view_cart"],
    "checkout": ["product", "add_to_cart", "view_cart", "place_order"],
}
TASK_WEIGHTS: dict[str, int] = {"index": 1, "setCurrency": 2, "browseProduct": 10,
                                "addToCart": 2, "viewCart": 3, "checkout": 1}

#: Calls per PlaceOrder (src/checkoutservice/main.go): getUserCart + emptyUserCart,
#: per item GetProduct + Convert, quoteShipping + Convert, chargeCard, shipOrder, email.
CHECKOUT_CALLS = {"cartservice": 2.0, "productcatalogservice": CART_ITEMS,
                  "currencyservice": CART_ITEMS + 1, "shippingservice": 2.0,
                  "paymentservice": 1.0, "emailservice": 1.0}


def derive_calls() -> dict[tuple[str, str], float]:
    """Mean calls per request on every edge of the OnlineBoutique graph.

    Frontend edges: calls per *frontend request*, averaged over the locust task mix.
    Downstream edges: calls per request the caller serves.
    """
    calls: defaultdict[str, float] = defaultdict(float)
    requests = 0.0
    for task, weight in TASK_WEIGHTS.items():
        for handler in TASK_REQUESTS[task]:
            requests += weight
            for callee, n in HANDLER_CALLS[handler].items():
                calls[callee] += weight * n
    out = {("frontend", callee): round(n / requests, 4) for callee, n in sorted(calls.items())}
    out.update({("checkoutservice", c): n for c, n in CHECKOUT_CALLS.items()})
    out[("recommendationservice", "productcatalogservice")] = 1.0  # ListProducts
    out[("cartservice", "redis-cart")] = 1.0  # one HGET/HSET (+EXPIRE pipelined) per op
    return out


def _svc(name: str, req_m: float, req_mi: float, lim_m: float, cap: float, st: float,
         startup: float, *, max_r: int = 15, resp_kb: float = 1.0) -> ServiceSpec:
    return ServiceSpec(name=name, cpu_request_m=req_m, mem_request_mi=req_mi,
                       capacity_rps=cap, service_time_ms=st, startup_s=startup,
                       min_replicas=1, max_replicas=max_r, cpu_limit_m=lim_m,
                       resp_kb=resp_kb)


def onlineboutique() -> AppSpec:
    """The built-in OnlineBoutique spec (11 scalable workloads, 15 service edges + entry).

    Requests/limits are the upstream manifests'. Capacity per pod (req/s at the CPU limit)
    and service time are assumptions per language runtime, see docs/simulator.md.
    """
    services = [
        #    name                   req_m req_Mi lim_m  cap/pod  st_ms startup
        _svc("frontend",              100,  64,  200,   60,     4.0,  15, resp_kb=8.0),
        _svc("cartservice",           200,  64,  300,  250,     2.0,  20),
        _svc("productcatalogservice", 100,  64,  200,  400,     1.5,  10),
        _svc("currencyservice",       100,  64,  200,  350,     1.5,  12),
        _svc("paymentservice",        100,  64,  200,  200,     1.5,  12),
        _svc("shippingservice",       100,  64,  200,  400,     1.5,  10),
        _svc("emailservice",          100,  64,  200,  120,     3.0,  15),
        _svc("checkoutservice",       100,  64,  200,  150,     2.0,  10),
        _svc("recommendationservice", 100, 220,  200,  120,     3.0,  15),
        _svc("adservice",             200, 180,  300,  250,     2.0,  40),
        _svc("redis-cart",             70, 200,  125, 4000,     0.5,   8, max_r=1),
    ]
    calls = [CallSpec("loadgenerator", "frontend", 1.0, mtls=1.0, protocol="http")]
    for (src, dst), n in derive_calls().items():
        proto = "tcp" if dst == "redis-cart" else "grpc"
        calls.append(CallSpec(src, dst, n, mtls=1.0, protocol=proto))
    spec = AppSpec(
        name="onlineboutique",
        entry="frontend",
        slo_p95_ms=250.0,
        services={s.name: s for s in services},
        calls=tuple(calls),
        clients=("loadgenerator",),
    )
    return validate_app_spec(spec)


def reviewservice() -> tuple[ServiceSpec, list[CallSpec]]:
    """A service that is not in OnlineBoutique, for topology-change scenarios: a Go
    `reviewservice` that productcatalogservice calls on half of its requests."""
    svc = _svc("reviewservice", 100, 64, 200, 300, 2.0, 10)
    return svc, [CallSpec("productcatalogservice", "reviewservice", 0.5)]

