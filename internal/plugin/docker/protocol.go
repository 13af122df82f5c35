package docker

// Wire types of Docker's remote (legacy socket) plugin protocol, as Docker
// 20.10+ sends and reads them. Field names are Docker's: JSON uses the Go
// field names as they are.

// Content type of every reply.
const contentType = "application/vnd.docker.plugins.v1.2+json"

// Names Docker knows the drivers and their sockets by.
const (
	// NetworkDriverName is what `docker network create --driver` names.
	NetworkDriverName = "calico"
	// IPAMDriverName is what `--ipam-driver` names.
	IPAMDriverName = "calico-ipam"
)

// Address spaces and pool IDs the IPAM driver hands out.
const (
	LocalAddressSpace  = "CalicoLocalAddressSpace"
	GlobalAddressSpace = "CalicoGlobalAddressSpace"
	// PoolIDv4 and PoolIDv6 stand for "every enabled IPPool of the family";
	// a network created with --subnet gets the pool's CIDR as its pool ID.
	PoolIDv4 = "CalicoPoolIPv4"
	PoolIDv6 = "CalicoPoolIPv6"
)

// Option keys Docker uses.
const (
	optGeneric      = "com.docker.network.generic"
	optEnableIPv6   = "com.docker.network.enable_ipv6"
	optInternal     = "com.docker.network.internal"
	optMAC          = "com.docker.network.endpoint.macaddress"
	optAddressType  = "RequestAddressType"
	addrTypeGateway = "com.docker.network.gateway"
	dataGateway     = "com.docker.network.gateway"
)

// The gateway every container uses: a link-local address the host answers
// for by proxy ARP on each veth (Calico's choice), never a pool address.
const (
	GatewayIPv4 = "169.254.1.1"
	// gatewayIPv6Pool is the placeholder gateway of the "::/0" pool; the
	// real IPv6 next hop is the host veth's link-local address, given at Join.
	gatewayIPv6Pool = "fe80::1"
)

type errResponse struct {
	Err string
}

type activateResponse struct {
	Implements []string
}

// ---- NetworkDriver ----

type capabilitiesResponse struct {
	Scope             string
	ConnectivityScope string
}

type ipamData struct {
	AddressSpace string
	Pool         string
	Gateway      string
	AuxAddresses map[string]any
}

type createNetworkRequest struct {
	NetworkID string
	Options   map[string]any
	IPv4Data  []ipamData
	IPv6Data  []ipamData
}

// allocateNetworkRequest: a swarm manager's AllocateNetwork; Options are
// the network's driver options (flat, unlike CreateNetwork's).
type allocateNetworkRequest struct {
	NetworkID string
	Options   map[string]string
	IPv4Data  []ipamData
	IPv6Data  []ipamData
}

type allocateNetworkResponse struct {
	Options map[string]string
}

type networkRequest struct {
	NetworkID string
}

type endpointInterface struct {
	Address     string `json:",omitempty"`
	AddressIPv6 string `json:",omitempty"`
	MacAddress  string `json:",omitempty"`
}

type createEndpointRequest struct {
	NetworkID  string
	EndpointID string
	Interface  *endpointInterface
	Options    map[string]any
}

type createEndpointResponse struct {
	Interface *endpointInterface `json:",omitempty"`
}

type endpointRequest struct {
	NetworkID  string
	EndpointID string
}

type endpointInfoResponse struct {
	Value map[string]any
}

type joinRequest struct {
	NetworkID  string
	EndpointID string
	SandboxKey string
	Options    map[string]any
}

type interfaceName struct {
	SrcName   string
	DstPrefix string
}

// Route types of staticRoute.
const (
	routeNextHop   = 0
	routeConnected = 1
)

type staticRoute struct {
	Destination string
	RouteType   int
	NextHop     string `json:",omitempty"`
}

type joinResponse struct {
	InterfaceName         interfaceName
	Gateway               string        `json:",omitempty"`
	GatewayIPv6           string        `json:",omitempty"`
	StaticRoutes          []staticRoute `json:",omitempty"`
	DisableGatewayService bool
}

// ---- IpamDriver ----

type ipamCapabilitiesResponse struct {
	RequiresMACAddress    bool
	RequiresRequestReplay bool
}

type addressSpacesResponse struct {
	LocalDefaultAddressSpace  string
	GlobalDefaultAddressSpace string
}

type requestPoolRequest struct {
	AddressSpace string
	Pool         string
	SubPool      string
	Options      map[string]string
	V6           bool
}

type requestPoolResponse struct {
	PoolID string
	Pool   string
	Data   map[string]string
}

type releasePoolRequest struct {
	PoolID string
}

type requestAddressRequest struct {
	PoolID  string
	Address string
	Options map[string]string
}

type requestAddressResponse struct {
	Address string
	Data    map[string]string `json:",omitempty"`
}

type releaseAddressRequest struct {
	PoolID  string
	Address string
}
