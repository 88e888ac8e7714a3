// Which adapter serves each port, from the configuration alone (SPEC section 2): the embedded
// defaults (SQLite files, files under the data directory, the in-process bus) unless the
// distributed mode's variables are set (POSTGRES_HOST, S3_ENDPOINT or CLOUDINARY_CLOUD_NAME,
// KAFKA_SERVER). Each function fails with a clear message when its server cannot be used.
#pragma once

#include <functional>
#include <memory>

#include "app/config.h"
#include "common/result.h"
#include "observability/metrics.h"
#include "ports/blob_store.h"
#include "ports/event_bus.h"
#include "ports/identity.h"
#include "ports/mail.h"
#include "ports/metadata.h"
#include "ports/notifications.h"

namespace dither {

Result<std::unique_ptr<ImageRepository>> open_image_repository(const Config& config);
Result<std::unique_ptr<DitherRepository>> open_dither_repository(const Config& config);
Result<std::unique_ptr<NotificationRepository>> open_notification_repository(const Config& config);
Result<std::unique_ptr<BlobStore>> open_blob_store(const Config& config);
// SMTP when SMTP_HOST is set, otherwise .eml files in <DITHER_DATA_DIR>/mail.
Result<std::unique_ptr<MailSender>> open_mail_sender(const Config& config);
// Kafka creates the services' topics and their dead-letter topics when they are missing.
Result<std::unique_ptr<EventBus>> open_event_bus(const Config& config);

// API keys and browser sessions: <DITHER_DATA_DIR>/auth.db, or schema `auth` in PostgreSQL.
Result<std::unique_ptr<IdentityStore>> open_identity_store(const Config& config);

// The server-side secrets (docs/SECURITY.md): from the environment, or generated once into
// <DITHER_DATA_DIR>/secrets/. The configuration's empty ones are filled in.
Status load_secrets(Config& config);

// The PostgreSQL connection pools of this process in `metrics` (dither_db_pool_*), read when
// scraped; nothing with the embedded SQLite (no pool).
void watch_database_pools(observability::Metrics& metrics);

// "sqlite"/"postgres", "filesystem"/"s3"/"cloudinary", "in-process"/"kafka", "mailbox"/"smtp".
std::string describe_adapters(const Config& config);

}  // namespace dither
