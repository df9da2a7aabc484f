/// The learning-app API's OpenAPI 3.1 document, served at `/api/v1/openapi.json`.
///
/// Generated from docs/api/openapi.json (the copy readers and tools use) by
/// `ops/generate-openapi.sh`; a test fails when the two differ.
enum OpenAPIDocument {
    static let json = #"""
{
  "openapi": "3.1.0",
  "info": {
    "title": "hocvu site API for learning apps",
    "version": "1.0.0",
    "description": "Served by a hocvu site daemon at /api/v1 when [portal] is enabled (docs/portal.md). Each app sends the bearer token the commune operator issued with `hocvu site app add NAME`. Learners are named by their 8-digit portal code, never by a national ID. Writes carry a client-chosen `id`: the same id with the same body returns the first answer (200, replayed: true) and records nothing; the same id with a different body is 409."
  },
  "servers": [{"url": "/"}],
  "security": [{"bearer": []}],
  "paths": {
    "/api/v1/openapi.json": {
      "get": {
        "operationId": "getOpenAPI",
        "summary": "This document",
        "security": [],
        "responses": {"200": {"description": "The OpenAPI document", "content": {"application/json": {"schema": {"type": "object"}}}}}
      }
    },
    "/api/v1/learners/{code}/courses": {
      "get": {
        "operationId": "listCourses",
        "summary": "Courses the installed release offers this learner (by role and province), without answer keys",
        "parameters": [{"$ref": "#/components/parameters/code"}],
        "responses": {
          "200": {"description": "Courses", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Courses"}}}},
          "401": {"$ref": "#/components/responses/Unauthorized"},
          "404": {"$ref": "#/components/responses/NotFound"}
        }
      }
    },
    "/api/v1/learners/{code}/status": {
      "get": {
        "operationId": "learnerStatus",
        "summary": "Progress, best scores and certificates of a learner",
        "parameters": [{"$ref": "#/components/parameters/code"}],
        "responses": {
          "200": {"description": "Status", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Status"}}}},
          "401": {"$ref": "#/components/responses/Unauthorized"},
          "404": {"$ref": "#/components/responses/NotFound"}
        }
      }
    },
    "/api/v1/learners/{code}/lessons/{lesson}": {
      "get": {
        "operationId": "getLesson",
        "summary": "A lesson of a course offered to the learner, with its files",
        "parameters": [{"$ref": "#/components/parameters/code"}, {"$ref": "#/components/parameters/lesson"}],
        "responses": {
          "200": {"description": "Lesson", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Lesson"}}}},
          "401": {"$ref": "#/components/responses/Unauthorized"},
          "404": {"$ref": "#/components/responses/NotFound"}
        }
      }
    },
    "/api/v1/learners/{code}/lessons/{lesson}/files/{index}": {
      "get": {
        "operationId": "getLessonFile",
        "summary": "A lesson file's bytes; honours a single-range Range header (206)",
        "parameters": [
          {"$ref": "#/components/parameters/code"}, {"$ref": "#/components/parameters/lesson"},
          {"name": "index", "in": "path", "required": true, "schema": {"type": "integer", "minimum": 0, "maximum": 999}},
          {"name": "Range", "in": "header", "required": false, "schema": {"type": "string", "pattern": "^bytes=[0-9]{0,12}-[0-9]{0,12}$"}},
          {"name": "If-Range", "in": "header", "required": false, "description": "An ETag: the range is served only if the file is still that version, else the whole file (200)", "schema": {"type": "string"}}
        ],
        "responses": {
          "200": {"description": "The whole file", "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}}},
          "206": {"description": "The requested range", "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}}},
          "304": {"description": "Not modified: If-None-Match names the file's current ETag"},
          "401": {"$ref": "#/components/responses/Unauthorized"},
          "404": {"$ref": "#/components/responses/NotFound"},
          "416": {"description": "The range starts beyond the file's end"}
        }
      }
    },
    "/api/v1/learners/{code}/progress": {
      "post": {
        "operationId": "recordProgress",
        "summary": "Records progress in a lesson (only rises; 100 completes it); enrolls the learner in its course",
        "parameters": [{"$ref": "#/components/parameters/code"}],
        "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ProgressRequest"}}}},
        "responses": {
          "200": {"description": "Already recorded under this id (replayed)", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ProgressResult"}}}},
          "201": {"description": "Recorded", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ProgressResult"}}}},
          "400": {"$ref": "#/components/responses/BadRequest"},
          "401": {"$ref": "#/components/responses/Unauthorized"},
          "404": {"$ref": "#/components/responses/NotFound"},
          "409": {"$ref": "#/components/responses/Conflict"},
          "413": {"$ref": "#/components/responses/TooLarge"},
          "415": {"$ref": "#/components/responses/UnsupportedMediaType"},
          "422": {"$ref": "#/components/responses/Unprocessable"}
        }
      }
    },
    "/api/v1/learners/{code}/attempts": {
      "post": {
        "operationId": "submitAttempt",
        "summary": "Submits quiz answers; the site grades them (the key never leaves it) and records the attempt",
        "parameters": [{"$ref": "#/components/parameters/code"}],
        "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/AttemptRequest"}}}},
        "responses": {
          "200": {"description": "Already recorded under this id (replayed)", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/AttemptResult"}}}},
          "201": {"description": "Graded and recorded", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/AttemptResult"}}}},
          "400": {"$ref": "#/components/responses/BadRequest"},
          "401": {"$ref": "#/components/responses/Unauthorized"},
          "404": {"$ref": "#/components/responses/NotFound"},
          "409": {"$ref": "#/components/responses/Conflict"},
          "413": {"$ref": "#/components/responses/TooLarge"},
          "415": {"$ref": "#/components/responses/UnsupportedMediaType"},
          "422": {"$ref": "#/components/responses/Unprocessable"}
        }
      }
    }
  },
  "components": {
    "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
    "parameters": {
      "code": {"name": "code", "in": "path", "required": true, "description": "The learner's portal code", "schema": {"type": "string", "pattern": "^[0-9]{8}$"}},
      "lesson": {"name": "lesson", "in": "path", "required": true, "schema": {"$ref": "#/components/schemas/Id"}, "example": "ksn-101-l1"}
    },
    "responses": {
      "BadRequest": {"description": "The body is not the JSON this endpoint takes", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
      "Unauthorized": {"description": "No valid bearer token", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
      "NotFound": {"description": "No such learner, or the lesson, quiz or file is not offered to them", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
      "Conflict": {"description": "The id was already used for a different request", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
      "TooLarge": {"description": "The body is over 64 KiB", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
      "UnsupportedMediaType": {"description": "Content-Type is not application/json", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
      "Unprocessable": {"description": "Well-formed but refused (out of range, wrong number of answers, validation)", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    },
    "schemas": {
      "Id": {"type": "string", "pattern": "^[A-Za-z0-9._-]{1,64}$"},
      "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}},
      "Courses": {
        "type": "object", "required": ["courses"],
        "properties": {
          "release": {"type": ["integer", "null"], "description": "The installed release's version; absent before one is installed"},
          "courses": {"type": "array", "items": {"$ref": "#/components/schemas/Course"}}
        }
      },
      "Course": {
        "type": "object", "required": ["id", "title", "area", "pass_percent", "lessons", "quizzes"],
        "properties": {
          "id": {"type": "string"}, "title": {"type": "string"}, "area": {"type": "string"},
          "pass_percent": {"type": "integer", "minimum": 1, "maximum": 100},
          "lessons": {"type": "array", "items": {"type": "object", "required": ["id", "title", "required"], "properties": {"id": {"type": "string"}, "title": {"type": "string"}, "required": {"type": "boolean"}}}},
          "quizzes": {"type": "array", "items": {"$ref": "#/components/schemas/Quiz"}}
        }
      },
      "Quiz": {
        "type": "object", "required": ["id", "title", "max_score", "questions"],
        "properties": {
          "id": {"type": "string"}, "title": {"type": "string"}, "max_score": {"type": "integer"},
          "questions": {"type": "array", "items": {"type": "object", "required": ["id", "prompt", "choices", "points"], "properties": {"id": {"type": "string"}, "prompt": {"type": "string"}, "choices": {"type": "array", "items": {"type": "string"}}, "points": {"type": "integer"}}}}
        }
      },
      "Lesson": {
        "type": "object", "required": ["course", "id", "title", "required", "files"],
        "properties": {
          "course": {"type": "string"}, "id": {"type": "string"}, "title": {"type": "string"}, "required": {"type": "boolean"},
          "files": {"type": "array", "items": {"type": "object", "required": ["path", "size", "content_type", "url"], "properties": {"path": {"type": "string"}, "size": {"type": "integer"}, "content_type": {"type": "string"}, "url": {"type": "string"}}}}
        }
      },
      "Status": {
        "type": "object", "required": ["code", "full_name", "courses", "lessons", "scores"],
        "properties": {
          "code": {"type": "string"}, "full_name": {"type": "string"},
          "courses": {"type": "array", "items": {"type": "object", "required": ["id", "title", "enrolled", "required_lessons", "completed_required_lessons", "quizzes", "passed_quizzes", "complete"], "properties": {"id": {"type": "string"}, "title": {"type": "string"}, "enrolled": {"type": "boolean"}, "required_lessons": {"type": "integer"}, "completed_required_lessons": {"type": "integer"}, "quizzes": {"type": "integer"}, "passed_quizzes": {"type": "integer"}, "complete": {"type": "boolean"}, "certificate_issued_at": {"type": ["string", "null"], "description": "RFC 3339, Asia/Ho_Chi_Minh"}}}},
          "lessons": {"type": "object", "additionalProperties": {"type": "integer", "minimum": 0, "maximum": 100}},
          "scores": {"type": "array", "items": {"type": "object", "required": ["quiz", "best_score", "max_score", "attempts"], "properties": {"quiz": {"type": "string"}, "best_score": {"type": "integer"}, "max_score": {"type": "integer"}, "attempts": {"type": "integer"}}}}
        }
      },
      "ProgressRequest": {
        "type": "object", "required": ["id", "lesson", "percent"],
        "examples": [{"id": "progress-7f3a", "lesson": "ksn-101-l1", "percent": 100}],
        "properties": {"id": {"$ref": "#/components/schemas/Id"}, "lesson": {"$ref": "#/components/schemas/Id"}, "percent": {"type": "integer", "minimum": 0, "maximum": 100}}
      },
      "ProgressResult": {
        "type": "object", "required": ["id", "lesson", "percent", "replayed"],
        "properties": {"id": {"type": "string"}, "lesson": {"type": "string"}, "percent": {"type": "integer"}, "replayed": {"type": "boolean"}}
      },
      "AttemptRequest": {
        "type": "object", "required": ["id", "quiz", "answers"],
        "examples": [{"id": "attempt-01", "quiz": "ksn-101-quiz", "answers": [1, 2, 2, 0, 1], "started_at": "2026-03-01T09:40:00+07:00"}],
        "properties": {
          "id": {"$ref": "#/components/schemas/Id"}, "quiz": {"$ref": "#/components/schemas/Id"},
          "answers": {"type": "array", "maxItems": 1000, "items": {"type": "integer", "minimum": -1, "maximum": 1000}, "description": "Option index per question, -1 for a question left blank"},
          "started_at": {"type": "string", "format": "date-time", "description": "When the learner opened the quiz (RFC 3339); clamped to the last 24 hours"}
        }
      },
      "AttemptResult": {
        "type": "object", "required": ["id", "attempt_id", "quiz", "score", "max_score", "passed", "certificate_issued", "replayed"],
        "properties": {
          "id": {"type": "string"}, "attempt_id": {"type": "string", "description": "The attempt's UUIDv7, as it replicates"}, "quiz": {"type": "string"},
          "score": {"type": "integer"}, "max_score": {"type": "integer"}, "passed": {"type": "boolean"},
          "certificate_issued": {"type": "boolean"}, "replayed": {"type": "boolean"}
        }
      }
    }
  }
}
"""#
}
