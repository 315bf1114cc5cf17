// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

/// @title AnchorRegistry
/// @notice Trust registry and timestamp anchor for Shomei certificates. A governance
/// account (a prefecture, a consortium of municipalities) registers issuers; each issuer
/// publishes its signing keys and anchors the Merkle roots of its credential batches.
/// Only roots are stored: no personal data and no per-person hash ever reaches the chain.
/// @dev One deployment per network. A verifier needs only the chain, this address and
/// the view functions below to resolve an issuer, rebuild its JWKs and check an anchor.
contract AnchorRegistry {
    // ------------------------------------------------------------------ types

    /// @notice Lifecycle of an issuer account. `None` means never registered.
    enum Status {
        None,
        Active,
        Inactive
    }

    /// @notice A registered issuer.
    /// @param issuerId The `iss` URL of its credentials, unique in the registry.
    /// @param name Display name, e.g. "長崎市".
    /// @param municipalityCode 全国地方公共団体コード (6 digits with check digit).
    struct Issuer {
        string issuerId;
        string name;
        string municipalityCode;
        Status status;
    }

    /// @notice A P-256 signing key of an issuer (public data: a verifier rebuilds the
    /// JWK `{"kty":"EC","crv":"P-256","x":…,"y":…}` from `x` and `y`).
    /// @param thumbprint RFC 7638 SHA-256 JWK thumbprint, the credential's `kid`.
    /// @param validFrom Seconds since the epoch from which the key may sign.
    /// @param revokedAt Seconds since the epoch from which it may not; 0 = not revoked.
    /// @param addedAt Block timestamp of the registration.
    struct Key {
        bytes32 thumbprint;
        bytes32 x;
        bytes32 y;
        uint64 validFrom;
        uint64 revokedAt;
        uint64 addedAt;
    }

    /// @dev Storage form of a key: the thumbprint is the mapping key, and the three
    /// times share one slot.
    struct KeyData {
        bytes32 x;
        bytes32 y;
        uint64 validFrom;
        uint64 revokedAt;
        uint64 addedAt;
    }

    // ------------------------------------------------------------------ errors

    /// @notice Only the governance account may do this.
    error NotGovernance(address caller);
    /// @notice The account is not a registered issuer.
    error NotRegistered(address account);
    /// @notice The account is not an active registered issuer.
    error NotActiveIssuer(address account);
    /// @notice The account is already a registered issuer.
    error AlreadyRegistered(address account);
    /// @notice The issuer id is already registered, to `holder`.
    /// @dev No string argument: eth-tester would mistake the data for Error(string).
    error IssuerIdTaken(address holder);
    /// @notice The issuer is already in the requested state.
    error StatusUnchanged(address account, Status status);
    /// @notice An address, issuer id, key or root was zero or empty.
    error EmptyValue();
    /// @notice The issuer already has a key with this thumbprint.
    error KeyExists(address issuer, bytes32 thumbprint);
    /// @notice The issuer has no key with this thumbprint.
    error UnknownKey(address issuer, bytes32 thumbprint);
    /// @notice The key is already revoked at this time or earlier.
    error KeyAlreadyRevoked(address issuer, bytes32 thumbprint, uint64 revokedAt);
    /// @notice An issuer may not back-date its own new key; only governance may.
    error ValidFromInPast(uint64 validFrom, uint64 blockTimestamp);
    /// @notice This issuer anchored this root before.
    error AlreadyAnchored(address issuer, bytes32 root, uint64 timestamp);

    // ------------------------------------------------------------------ events

    event GovernanceTransferred(address indexed previousGovernance, address indexed newGovernance);
    event IssuerRegistered(
        address indexed account, string issuerId, string name, string municipalityCode
    );
    event IssuerDeactivated(address indexed account);
    event IssuerReactivated(address indexed account);
    event KeyAdded(
        address indexed issuer, bytes32 indexed thumbprint, bytes32 x, bytes32 y, uint64 validFrom
    );
    event KeyRevoked(address indexed issuer, bytes32 indexed thumbprint, uint64 revokedAt);
    event Anchored(address indexed issuer, bytes32 indexed root, uint64 timestamp);

    // ------------------------------------------------------------------ state

    /// @notice The account that registers and (de)activates issuers and manages any key.
    address public governance;

    mapping(address => Issuer) private _issuers;
    mapping(bytes32 => address) private _issuerById; // keccak256(issuerId) => account
    mapping(address => bytes32[]) private _thumbprints;
    mapping(address => mapping(bytes32 => KeyData)) private _keys;
    /// @dev (issuer, root) => timestamp | blockNumber << 64: one slot, so an anchor costs
    /// a single fresh SSTORE.
    mapping(address => mapping(bytes32 => uint256)) private _anchors;

    // ------------------------------------------------------------------ modifiers

    modifier onlyGovernance() {
        if (msg.sender != governance) revert NotGovernance(msg.sender);
        _;
    }

    /// @param initialGovernance The governance account; must not be zero.
    constructor(address initialGovernance) {
        if (initialGovernance == address(0)) revert EmptyValue();
        governance = initialGovernance;
        emit GovernanceTransferred(address(0), initialGovernance);
    }

    // ------------------------------------------------------------------ governance

    /// @notice Hand governance to another account (e.g. a multisig).
    function transferGovernance(address newGovernance) external onlyGovernance {
        if (newGovernance == address(0)) revert EmptyValue();
        emit GovernanceTransferred(governance, newGovernance);
        governance = newGovernance;
    }

    /// @notice Register `account` as an active issuer.
    /// @dev Reverts with AlreadyRegistered, IssuerIdTaken or EmptyValue.
    function registerIssuer(
        address account,
        string calldata issuerId,
        string calldata name,
        string calldata municipalityCode
    ) external onlyGovernance {
        if (account == address(0) || bytes(issuerId).length == 0) revert EmptyValue();
        if (_issuers[account].status != Status.None) revert AlreadyRegistered(account);
        bytes32 idHash = keccak256(bytes(issuerId));
        address holder = _issuerById[idHash];
        if (holder != address(0)) revert IssuerIdTaken(holder);
        _issuerById[idHash] = account;
        _issuers[account] = Issuer(issuerId, name, municipalityCode, Status.Active);
        emit IssuerRegistered(account, issuerId, name, municipalityCode);
    }

    /// @notice Stop `account` from anchoring and adding keys. Its anchors and keys stay
    /// readable: credentials anchored while it was active keep their proof.
    function deactivateIssuer(address account) external onlyGovernance {
        _setStatus(account, Status.Inactive);
        emit IssuerDeactivated(account);
    }

    /// @notice Let a deactivated issuer anchor again.
    function reactivateIssuer(address account) external onlyGovernance {
        _setStatus(account, Status.Active);
        emit IssuerReactivated(account);
    }

    /// @notice Add a key for any registered issuer (active or not), with any validFrom
    /// (e.g. to migrate keys that were in use before the registry existed).
    /// @param validFrom 0 means "from this block".
    function addKeyFor(address issuer, bytes32 thumbprint, bytes32 x, bytes32 y, uint64 validFrom)
        external
        onlyGovernance
    {
        if (_issuers[issuer].status == Status.None) revert NotRegistered(issuer);
        _addKey(issuer, thumbprint, x, y, validFrom == 0 ? uint64(block.timestamp) : validFrom);
    }

    /// @notice Revoke any issuer's key.
    /// @param revokedAt 0 means "from this block"; may be in the past (compromise found
    /// late). An existing revocation can only be moved earlier.
    function revokeKeyFor(address issuer, bytes32 thumbprint, uint64 revokedAt)
        external
        onlyGovernance
    {
        _revokeKey(issuer, thumbprint, revokedAt);
    }

    // ------------------------------------------------------------------ issuers

    /// @notice Add a key of the calling (active) issuer.
    /// @param validFrom 0 means "from this block"; otherwise not before this block, so a
    /// stolen issuer account cannot back-date a key to vouch for older credentials.
    function addKey(bytes32 thumbprint, bytes32 x, bytes32 y, uint64 validFrom) external {
        if (_issuers[msg.sender].status != Status.Active) revert NotActiveIssuer(msg.sender);
        uint64 nowTs = uint64(block.timestamp);
        if (validFrom == 0) validFrom = nowTs;
        else if (validFrom < nowTs) revert ValidFromInPast(validFrom, nowTs);
        _addKey(msg.sender, thumbprint, x, y, validFrom);
    }

    /// @notice Revoke a key of the calling issuer (allowed even when deactivated:
    /// revoking only ever removes trust).
    /// @param revokedAt As in revokeKeyFor.
    function revokeKey(bytes32 thumbprint, uint64 revokedAt) external {
        if (_issuers[msg.sender].status == Status.None) revert NotRegistered(msg.sender);
        _revokeKey(msg.sender, thumbprint, revokedAt);
    }

    /// @notice Anchor the Merkle root of a batch of credentials at this block's time.
    /// @dev Only an active issuer; each (issuer, root) once. One cold SLOAD, one fresh
    /// SSTORE and one LOG3: under 50,000 gas whatever the batch size.
    function anchor(bytes32 root) external {
        if (_issuers[msg.sender].status != Status.Active) revert NotActiveIssuer(msg.sender);
        if (root == bytes32(0)) revert EmptyValue();
        uint256 packed = _anchors[msg.sender][root];
        if (packed != 0) revert AlreadyAnchored(msg.sender, root, uint64(packed));
        uint64 ts = uint64(block.timestamp);
        _anchors[msg.sender][root] = uint256(ts) | (uint256(block.number) << 64);
        emit Anchored(msg.sender, root, ts);
    }

    // ------------------------------------------------------------------ views

    /// @notice When `issuer` anchored `root`; (0, 0) if it never did.
    function anchorOf(address issuer, bytes32 root)
        external
        view
        returns (uint64 timestamp, uint64 blockNumber)
    {
        uint256 packed = _anchors[issuer][root];
        return (uint64(packed), uint64(packed >> 64));
    }

    /// @notice The issuer record of `account` (status None if not registered).
    function issuerOf(address account) external view returns (Issuer memory) {
        return _issuers[account];
    }

    /// @notice The account registered with `issuerId`, or the zero address.
    function issuerAddressById(string calldata issuerId) external view returns (address) {
        return _issuerById[keccak256(bytes(issuerId))];
    }

    /// @notice Every key `issuer` ever had, in registration order (revoked ones included).
    function keysOf(address issuer) external view returns (Key[] memory keys) {
        bytes32[] storage tps = _thumbprints[issuer];
        keys = new Key[](tps.length);
        for (uint256 i = 0; i < tps.length; i++) {
            keys[i] = _key(issuer, tps[i]);
        }
    }

    /// @notice One key of `issuer`; thumbprint zero if it has none with `thumbprint`.
    function keyOf(address issuer, bytes32 thumbprint) external view returns (Key memory) {
        if (_keys[issuer][thumbprint].addedAt == 0) return Key(0, 0, 0, 0, 0, 0);
        return _key(issuer, thumbprint);
    }

    // ------------------------------------------------------------------ internals

    function _setStatus(address account, Status status) private {
        Status current = _issuers[account].status;
        if (current == Status.None) revert NotRegistered(account);
        if (current == status) revert StatusUnchanged(account, status);
        _issuers[account].status = status;
    }

    function _addKey(address issuer, bytes32 thumbprint, bytes32 x, bytes32 y, uint64 validFrom)
        private
    {
        if (thumbprint == 0 || x == 0 || y == 0) revert EmptyValue();
        KeyData storage k = _keys[issuer][thumbprint];
        if (k.addedAt != 0) revert KeyExists(issuer, thumbprint);
        k.x = x;
        k.y = y;
        k.validFrom = validFrom;
        k.addedAt = uint64(block.timestamp);
        _thumbprints[issuer].push(thumbprint);
        emit KeyAdded(issuer, thumbprint, x, y, validFrom);
    }

    function _revokeKey(address issuer, bytes32 thumbprint, uint64 revokedAt) private {
        KeyData storage k = _keys[issuer][thumbprint];
        if (k.addedAt == 0) revert UnknownKey(issuer, thumbprint);
        if (revokedAt == 0) revokedAt = uint64(block.timestamp);
        // Moving a revocation later would restore trust in signatures already
        // declared untrustworthy; only an earlier time is accepted.
        if (k.revokedAt != 0 && k.revokedAt <= revokedAt) {
            revert KeyAlreadyRevoked(issuer, thumbprint, k.revokedAt);
        }
        k.revokedAt = revokedAt;
        emit KeyRevoked(issuer, thumbprint, revokedAt);
    }

    function _key(address issuer, bytes32 thumbprint) private view returns (Key memory) {
        KeyData storage k = _keys[issuer][thumbprint];
        return Key(thumbprint, k.x, k.y, k.validFrom, k.revokedAt, k.addedAt);
    }
}
