#include "coordinator/database_url.h"

#include <gtest/gtest.h>

namespace manifold {
namespace {

TEST(DatabaseUrlTest, AUriGetsEveryDeadlineAsQueryParameters) {
  EXPECT_EQ(WithConnectionDeadlines("postgresql://u@db:5432/manifold"),
            "postgresql://u@db:5432/manifold?connect_timeout=10&keepalives=1&keepalives_idle=10"
            "&keepalives_interval=5&keepalives_count=3&tcp_user_timeout=30000");
}

TEST(DatabaseUrlTest, WhatTheOperatorSetIsKept) {
  EXPECT_EQ(WithConnectionDeadlines("postgres://db/m?sslmode=require&connect_timeout=3&"
                                    "keepalives=0&keepalives_idle=1&keepalives_interval=1&"
                                    "keepalives_count=1&tcp_user_timeout=0"),
            "postgres://db/m?sslmode=require&connect_timeout=3&keepalives=0&keepalives_idle=1&"
            "keepalives_interval=1&keepalives_count=1&tcp_user_timeout=0");
}

TEST(DatabaseUrlTest, KeywordFormGetsKeywordsAndAPasswordLookingLikeAKeyIsNotOne) {
  EXPECT_EQ(WithConnectionDeadlines("host=/run/pg dbname=m password=xconnect_timeout=5 "
                                    "keepalives=0"),
            "host=/run/pg dbname=m password=xconnect_timeout=5 keepalives=0 connect_timeout=10 "
            "keepalives_idle=10 keepalives_interval=5 keepalives_count=3 "
            "tcp_user_timeout=30000");
}

}  // namespace
}  // namespace manifold
