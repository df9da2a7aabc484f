import GRDB
import Model

extension AdminUnits {
    /// Seeds the `province` and `commune` tables (a new database, first open).
    func insert(into db: Database) throws {
        let p = try db.makeStatement(sql: "INSERT INTO province (code, name) VALUES (?, ?)")
        let c = try db.makeStatement(sql: "INSERT INTO commune (code, province_code, name, kind) VALUES (?, ?, ?, ?)")
        for province in provinces {
            try p.execute(arguments: [province.code, province.name])
            for commune in province.communes {
                try c.execute(arguments: [commune.code, province.code, commune.name, commune.type])
            }
        }
    }
}
