import { redirect } from "next/navigation";
import { currentUser } from "@/lib/http";

export default async function Home() {
  redirect((await currentUser()) ? "/dashboard" : "/login");
}
