# Real servers for the adapters' contract tests: PostgreSQL, Apache Kafka, an S3 server
# (versitygw) and an SMTP server (aiosmtpd), started by scripts/infra/*.sh as ctest fixtures and
# stopped after the tests that need them. They listen on loopback ports derived from
# DITHER_TEST_PORT_BASE and keep their state under <build>/infra-test, so two build trees tested
# one after the other never share data.
#
#   dither_infra_test(<gtest target>)   registers the target's tests (label `infra`) as needing
#                                       the one `infra` fixture, which starts all four servers
#
# The test programs learn where the servers are from compile definitions (DITHER_TEST_*). A test
# whose server is missing fails; nothing skips.
set(DITHER_TEST_PORT_BASE 31000 CACHE STRING "Below 32768 (the ephemeral range). Test servers \
listen on base+432 (PostgreSQL), base+92/93 (Kafka), base+70 (S3), base+25/26 (SMTP)")
math(EXPR DITHER_TEST_POSTGRES_PORT "${DITHER_TEST_PORT_BASE} + 432")
math(EXPR DITHER_TEST_KAFKA_PORT "${DITHER_TEST_PORT_BASE} + 92")
math(EXPR DITHER_TEST_S3_PORT "${DITHER_TEST_PORT_BASE} + 70")
# SMTP (aiosmtpd): base+25, and implicit TLS (smtps) on base+26.
math(EXPR DITHER_TEST_SMTP_PORT "${DITHER_TEST_PORT_BASE} + 25")
set(DITHER_TEST_INFRA_RUN "${CMAKE_BINARY_DIR}/infra-test")

set(_infra_env
  "DITHER_INFRA_RUN=${DITHER_TEST_INFRA_RUN}"
  "POSTGRES_PORT=${DITHER_TEST_POSTGRES_PORT}"
  "KAFKA_PORT=${DITHER_TEST_KAFKA_PORT}"
  "S3_PORT=${DITHER_TEST_S3_PORT}"
  "SMTP_PORT=${DITHER_TEST_SMTP_PORT}")

# One fixture for all the servers: a list would not survive gtest_discover_tests' PROPERTIES.
foreach(server postgres kafka s3 smtp)
  add_test(NAME infra_${server}_start
    COMMAND ${CMAKE_SOURCE_DIR}/scripts/infra/${server}.sh start)
  add_test(NAME infra_${server}_stop
    COMMAND ${CMAKE_SOURCE_DIR}/scripts/infra/${server}.sh stop)
  set_tests_properties(infra_${server}_start PROPERTIES
    FIXTURES_SETUP infra ENVIRONMENT "${_infra_env}" LABELS infra TIMEOUT 600)
  set_tests_properties(infra_${server}_stop PROPERTIES
    FIXTURES_CLEANUP infra ENVIRONMENT "${_infra_env}" LABELS infra TIMEOUT 120)
endforeach()

function(dither_infra_test target)
  target_compile_definitions(${target} PRIVATE
    DITHER_TEST_POSTGRES_PORT=${DITHER_TEST_POSTGRES_PORT}
    DITHER_TEST_KAFKA_PORT=${DITHER_TEST_KAFKA_PORT}
    DITHER_TEST_S3_PORT=${DITHER_TEST_S3_PORT}
    DITHER_TEST_SMTP_PORT=${DITHER_TEST_SMTP_PORT})
  gtest_discover_tests(${target}
    PROPERTIES LABELS infra
               FIXTURES_REQUIRED infra
               TIMEOUT 300)
endfunction()
