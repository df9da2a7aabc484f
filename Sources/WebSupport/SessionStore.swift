import Foundation
import Sodium
import Synchronization

/// Signed-in users (dashboard viewers, portal learners and operators), in memory: a restart signs everyone out, and no session token ever rests on
/// disk (a stolen backup holds none). The key of each session is the BLAKE2b hash of its token, so
/// looking one up compares hashes, not the secret itself. Each request re-reads the account from
/// the database, so `hocvu hub user remove` ends a session at its next request.
public final class SessionStore: Sendable {
    public struct Session: Sendable {
        public let user: String
        /// The token every form of this session carries (compared in constant time).
        public let csrf: String
        public let createdAt: Int64
        public var lastSeenAt: Int64
    }

    /// A session unused this long ends (30 min), and none outlives `absoluteMilliseconds` (12 h).
    public let idleMilliseconds: Int64
    public let absoluteMilliseconds: Int64
    /// At most this many sessions live at once; the least recently used goes first.
    public let capacity: Int
    /// At most this many sessions per user (a phone and a PC, a few browsers); the oldest goes first.
    public let perUser: Int
    private let sessions = Mutex<[Data: Session]>([:])

    public init(idleMilliseconds: Int64 = 30 * 60_000, absoluteMilliseconds: Int64 = 12 * 3_600_000, capacity: Int = 10_000, perUser: Int = 8) {
        self.perUser = perUser
        self.idleMilliseconds = idleMilliseconds
        self.absoluteMilliseconds = absoluteMilliseconds
        self.capacity = capacity
    }

    /// A fresh random token: 32 bytes from the OS CSPRNG, as 64 lower-case hex characters.
    public static func token() -> String { Sodium.randomBytes(32).map { String(format: "%02x", $0) }.joined() }

    /// True for a string shaped like ``token()``'s output; anything else is never looked up.
    public static func isTokenShaped(_ s: String) -> Bool {
        s.utf8.count == 64 && s.utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) }
    }

    private static func key(_ token: String) -> Data { Blake2b.hash(Data(token.utf8)) }

    /// Starts a session for `user`; returns its token (the cookie's value) and the session.
    public func create(user: String, now: Int64) -> (token: String, session: Session) {
        let token = Self.token()
        let session = Session(user: user, csrf: Self.token(), createdAt: now, lastSeenAt: now)
        sessions.withLock { all in
            all = all.filter { !expired($0.value, now: now) }
            // One user's sign-ins evict only that user's sessions, so nobody can sign the others out
            // by signing in over and over; the overall cap is for many users at once.
            let own = all.filter { $0.value.user == user }
            if own.count >= perUser, let oldest = own.min(by: { $0.value.lastSeenAt < $1.value.lastSeenAt }) {
                all[oldest.key] = nil
            } else if all.count >= capacity, let oldest = all.min(by: { $0.value.lastSeenAt < $1.value.lastSeenAt }) {
                all[oldest.key] = nil
            }
            all[Self.key(token)] = session
        }
        return (token, session)
    }

    /// The live session of `token` (its last use set to `now`), or nil.
    public func session(token: String, now: Int64) -> Session? {
        guard Self.isTokenShaped(token) else { return nil }
        let key = Self.key(token)
        return sessions.withLock { all in
            guard var s = all[key] else { return nil }
            guard !expired(s, now: now) else {
                all[key] = nil
                return nil
            }
            s.lastSeenAt = now
            all[key] = s
            return s
        }
    }

    public func remove(token: String) {
        guard Self.isTokenShaped(token) else { return }
        _ = sessions.withLock { $0.removeValue(forKey: Self.key(token)) }
    }

    public var count: Int { sessions.withLock { $0.count } }

    private func expired(_ s: Session, now: Int64) -> Bool {
        now - s.lastSeenAt > idleMilliseconds || now - s.createdAt > absoluteMilliseconds || now < s.createdAt
    }
}
